"""The ``studentstatus`` command line: a thin layer over the services.

Each command group lives in its own module under :mod:`studentstatus.cli` and
is attached to :data:`main` here.  Conventions shared by every command:

* ``--store URL`` or ``STUDENTSTATUS_STORE`` picks the store
  (default ``sqlite:///studentstatus.db``);
* ``--as ROLE:SCOPE`` names the operator (``kindergarten:SCHOOLCODE``,
  ``county:CODE6``, ``city:CODE4``, ``province:CODE2``, ``ministry``);
* ``--json`` prints one JSON document on stdout;
* exit 0 on success, 1 when a check or a rule says no, 2 on usage errors.
"""

from __future__ import annotations

import importlib

import click

from studentstatus._version import __version__

__all__ = ["main"]

# Modules that add commands to ``main``; each defines ``register(group)``.
_COMMAND_MODULES = (
    "studentstatus.cli.ids",
    "studentstatus.cli.domain",
    "studentstatus.cli.store",
    "studentstatus.cli.registration",
    "studentstatus.cli.records",
    "studentstatus.cli.lookup",
    "studentstatus.cli.changes",
    "studentstatus.cli.monitoring",
    "studentstatus.cli.handover",
    "studentstatus.cli.demo",
    "studentstatus.cli.federation",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="studentstatus")
def main() -> None:
    """Preschool student-status (学籍) rules: identity checks, records, numbers, changes."""
    import logging

    # The library logs refusals for a host's security log; without a logging set-up the
    # command's own error line says it (Python would print each warning again on stderr).
    log = logging.getLogger("studentstatus")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(main)


_register_all()
