"""examples/property_tests.py runs in CI: every test in it, the stateful machine included."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

_PATH = Path(__file__).resolve().parents[2] / "examples" / "property_tests.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("property_tests_example", _PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


EXAMPLE = _load()
TESTS = sorted(n for n in vars(EXAMPLE) if n.startswith("test_"))


def test_the_example_has_the_tests_the_how_to_names() -> None:
    """The how-to refers to these; the machine is collected as a TestCase."""
    assert "test_the_machine_catches_a_broken_skip_rule" in TESTS
    assert "test_province_caps_hold_on_every_legal_history" in TESTS
    assert hasattr(EXAMPLE.TestProvinceMachine, "runTest")


@pytest.mark.parametrize("name", TESTS)
def test_example_function(name: str) -> None:
    """Each test function of the example passes."""
    fn: Callable[[], None] = getattr(EXAMPLE, name)
    fn()


def test_example_machine() -> None:
    """The province machine (correct rule) passes at its settings."""
    EXAMPLE.TestProvinceMachine("runTest").runTest()
