"""examples/custom_adapter.py (a pickle-file store) passes the conformance kit here too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "examples" / "custom_adapter.py"
_spec = importlib.util.spec_from_file_location("custom_adapter_example", _PATH)
assert _spec is not None
assert _spec.loader is not None
custom_adapter = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = custom_adapter
_spec.loader.exec_module(custom_adapter)

TestPickleStore = custom_adapter.TestPickleStore
