"""Hosts can introspect and type-check the API.

* ``typing.get_type_hints`` works on every public function and method (no name hidden behind
  ``TYPE_CHECKING`` that an annotation needs);
* ``host.py`` — a host using every shipped store and the example adapter as a
  :class:`~studentstatus.ports.Store` — passes ``mypy --strict`` (CI also runs it in its
  typing step; here it is skipped when mypy is not installed).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import studentstatus

ROOT = Path(__file__).resolve().parents[2]


def _public_callables() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for info in pkgutil.walk_packages(studentstatus.__path__, "studentstatus."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or "cli" in parts or "migrations" in parts:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isfunction(obj):
                out.append((f"{info.name}.{name}", obj))
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for attr, value in vars(obj).items():
                    if inspect.isfunction(value) and not attr.startswith("_"):
                        out.append((f"{info.name}.{name}.{attr}", value))
    return out


def test_get_type_hints_works_on_every_public_function() -> None:
    failures = []
    checked = 0
    for qualname, func in _public_callables():
        checked += 1
        try:
            typing.get_type_hints(func)
        except Exception as exc:
            failures.append(f"{qualname}: {type(exc).__name__}: {exc}")
    assert checked > 500
    assert failures == []


@pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed (--group typing)"
)
def test_a_host_type_checks_against_every_store() -> None:
    env = dict(os.environ, MYPYPATH=str(ROOT / "examples"))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "tests/typing/host.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
