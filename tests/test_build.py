"""The optional compiled build: which modules it compiles, and that a test run knows
which build it is testing (``STUDENTSTATUS_EXPECT_COMPILED=1``: the compiled one)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

import studentstatus
from studentstatus import compiled_modules

ROOT = Path(__file__).resolve().parents[1]


def _configured() -> tuple[str, ...]:
    """The modules pyproject.toml's compiled build hook compiles."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
    assert hook["enable-by-default"] is False  # a plain install stays pure Python
    names = []
    for path in hook["include"]:
        parts = Path(path).relative_to("src").with_suffix("").parts
        names.append(".".join(parts).removesuffix(".__init__"))
    return tuple(sorted(names))


def test_configured_modules_exist() -> None:
    """Every module the hook names is a source file of the package."""
    for name in _configured():
        rel = Path(*name.split("."))
        assert (ROOT / "src" / rel).with_suffix(".py").is_file() or (
            ROOT / "src" / rel / "__init__.py"
        ).is_file(), name


def test_this_build() -> None:
    """The installation under test is either pure or compiles exactly the configured
    modules; the compiled CI run insists on the compiled one."""
    found = compiled_modules()
    if os.environ.get("STUDENTSTATUS_EXPECT_COMPILED") == "1":
        assert found == _configured()
        assert "site-packages" in studentstatus.__file__
    elif Path(studentstatus.__file__).is_relative_to(ROOT / "src"):
        # the checkout itself (an editable install): never a compiled file left in src/
        assert found == ()
    else:
        assert found in ((), _configured())


def test_compiled_modules_reads_extension_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compiled file beside a source file counts; a package's ``__init__`` names the
    package."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from studentstatus import _build

    pkg = tmp_path / "studentstatus"
    (pkg / "ids").mkdir(parents=True)
    longest = max(EXTENSION_SUFFIXES, key=len)  # ".cpython-311-x86_64-linux-gnu.so" here
    (pkg / "ids" / f"__init__{longest}").write_bytes(b"")
    (pkg / f"phones{EXTENSION_SUFFIXES[-1]}").write_bytes(b"")
    (pkg / "phones.py").write_text("")
    (pkg / "py.typed").write_text("")
    (pkg / "machine.cpython-399-other.so").write_bytes(b"")  # another Python's: not loaded
    monkeypatch.setattr(_build, "__file__", str(pkg / "_build.py"))
    assert _build.compiled_modules() == ("studentstatus.ids", "studentstatus.phones")
