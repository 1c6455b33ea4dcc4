"""Shared fixtures: hypothesis profiles and the SQL servers from the environment.

``STUDENTSTATUS_TEST_POSTGRES_URL`` / ``STUDENTSTATUS_TEST_MYSQL_URL`` name the
servers. Without them the tests that need a server are skipped with a reason;
in CI (``CI=true``) a missing URL or a server that does not answer is a failure.
"""

from __future__ import annotations

import os

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
