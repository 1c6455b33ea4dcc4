"""The optional compiled build: hatch-mypyc, with the compiled files kept out of ``src/``.

Off by default (a plain ``pip install`` is pure Python).  Turned on with
``HATCH_BUILD_HOOKS_ENABLE=1`` for a wheel or a regular install; see
docs/how-to/compiled-build.md.  hatch-mypyc compiles in place, beside the sources, and
packs those files into the wheel; this hook removes them once the wheel is written, so a
checkout (and an editable install of it) never runs stale compiled code.  An editable
install is never compiled.
"""

from __future__ import annotations

from typing import Any

from hatch_mypyc.plugin import MypycBuildHook


class CompiledBuildHook(MypycBuildHook):  # type: ignore[misc]
    """hatch-mypyc's hook, for regular wheels only, cleaning up after itself."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            self.app.display_warning("studentstatus: an editable install is not compiled")
            return
        try:
            super().initialize(version, build_data)
        except BaseException:
            # finalize() runs only after a wheel is written: without this, a failed build
            # would leave compiled files in src/ for the checkout to import.
            self.clean([version])
            raise

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        self.clean([version])


def get_build_hook() -> type[CompiledBuildHook]:
    """The hook class (hatchling's choice when a build script holds several)."""
    return CompiledBuildHook
