"""Shared fixtures: hypothesis profiles and the SQL servers from the environment.

``STUDENTSTATUS_TEST_POSTGRES_URL`` / ``STUDENTSTATUS_TEST_MYSQL_URL`` name the
servers. Without them the tests that need a server are skipped with a reason;
in CI (``CI=true``) a missing URL or a server that does not answer is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")

IN_CI = os.environ.get("CI") == "true"


def _server_url(var: str, what: str) -> str:
    url = os.environ.get(var)
    if not url:
        if IN_CI:
            pytest.fail(f"{var} is not set: CI must run the SQL tests against {what}")
        pytest.skip(f"{var} not set: no {what} server to test against (set it to run these)")
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if IN_CI:
            pytest.fail(f"{what} at {var} does not answer: {exc}")
        pytest.skip(f"{what} at {var} does not answer: {exc}")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the PostgreSQL test server (skip or fail as described above)."""
    return _server_url("STUDENTSTATUS_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """URL of the MySQL/MariaDB test server (skip or fail as described above)."""
    return _server_url("STUDENTSTATUS_TEST_MYSQL_URL", "MariaDB/MySQL")


# --------------------------------------------------------------------------------------------
# PII sweep (tests/pii_sweep.py): no full identity number in logs, outputs or exceptions.

from pii_sweep import Sweep, install, summary_lines  # noqa: E402

SWEPT = (
    "tests/cli/",
    "tests/ids/test_cli_ids.py",
    "tests/domain/test_cli_domain.py",
    "tests/test_no_id_leaks.py",
    "tests/test_demo.py",
    "tests/services/test_flows.py",
    "tests/services/test_numbers_service.py",
    "tests/services/test_handover.py",
    "tests/services/test_search.py",
    "tests/services/test_verification.py",
    "tests/services/test_problems.py",
    "tests/services/test_changes.py",
    "tests/services/test_dropout.py",
    "tests/services/test_intake.py",
    "tests/services/test_roll_asof.py",
    "tests/services/test_registration_race.py",
    "tests/federation/",
)
"""Tests under these paths are swept automatically; any other test may ask for
``pii_sweep`` (or ``@pytest.mark.usefixtures("pii_sweep")``)."""

_SWEEP_STATS: dict[str, int] = {"swept": 0, "leaking": 0, "leaks": 0}


@pytest.fixture
def pii_sweep(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sweep]:
    """Fail the test if a full ID number of the test data (or its G number) shows up in a
    log record, captured output, a CLI result or a ``pytest.raises`` exception chain
    (see ``tests/pii_sweep.py``); ``@pytest.mark.reveals_ids`` exempts the outputs."""
    sweep = Sweep(outputs=request.node.get_closest_marker("reveals_ids") is None)
    finish = install(sweep, monkeypatch, request)
    yield sweep
    finish()
    _SWEEP_STATS["swept"] += 1
    if sweep.leaks:
        _SWEEP_STATS["leaking"] += 1
        _SWEEP_STATS["leaks"] += len(set(sweep.leaks))
        pytest.fail(sweep.report(), pytrace=False)


@pytest.fixture(autouse=True)
def _pii_sweep_selected(request: pytest.FixtureRequest) -> None:
    """Sweep the tests of :data:`SWEPT`."""
    path = request.node.path.as_posix()
    if any(f"/{part}" in path for part in SWEPT):
        request.getfixturevalue("pii_sweep")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """``PII sweep: N tests swept, M with leaks`` at the end of the run."""
    for line in summary_lines(_SWEEP_STATS):
        terminalreporter.write_line(line)
