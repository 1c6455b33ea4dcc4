"""Throwaway PostgreSQL clusters on loopback ports, for federation tests and benchmarks.

Debian's ``pg_createcluster`` makes a cluster (its own data directory, port and
server process) in about three seconds; the federation needs several (provinces
and a hub), each with ``wal_level = logical``.  :func:`unavailable` says why
clusters cannot be made here (no ``pg_createcluster``, not root), so that a test
can skip with that reason; :func:`create` makes one (trust authentication on
loopback, fsync off: test data only) and :meth:`Cluster.drop` removes it.
Names start with ``ssfed`` so that :func:`drop_stale` can remove the leftovers of
a run that was killed.

>>> Cluster("ssfed_p44", 55444, "15").url("test")
'postgresql+psycopg://postgres@127.0.0.1:55444/test'
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import attrs

__all__ = ["PREFIX", "Cluster", "create", "drop_stale", "unavailable"]

PREFIX = "ssfed"
"""The start of every cluster name this module makes."""


def _version() -> str | None:
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted(
            (p.name for p in root.iterdir() if p.name.isdigit() and (p / "bin/postgres").exists()),
            key=int,
        )
        if root.exists()
        else []
    )
    return versions[-1] if versions else None


def unavailable() -> str | None:
    """Why clusters cannot be made on this machine, or ``None`` when they can."""
    if shutil.which("pg_createcluster") is None:
        return "pg_createcluster is not installed (Debian's postgresql-common)"
    if _version() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql"
    if os.geteuid() != 0:
        return "pg_createcluster needs root (CI runs as root)"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        msg = f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
        raise RuntimeError(msg)
    return done.stdout


@attrs.define
class Cluster:
    """One cluster made by :func:`create`."""

    name: str
    port: int
    version: str

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this cluster (user ``postgres``, trust)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server (``pg_ctlcluster … start``)."""
        _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (as if the machine died)."""
        _run(
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            self.version,
            self.name,
            "stop",
            "-m",
            mode,
        )

    def drop(self) -> None:
        """Stop the server and remove the cluster with its data."""
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name],
            capture_output=True,
            check=False,
        )


def create(name: str, port: int, *, settings: dict[str, str] | None = None) -> Cluster:
    """Make and start a cluster ``name`` on ``port`` with ``wal_level = logical`` (and
    ``settings``); a cluster of that name left from an earlier run is dropped first."""
    version = _version()
    if version is None or unavailable() is not None:
        raise RuntimeError(unavailable() or "no PostgreSQL")
    cluster = Cluster(name, port, version)
    cluster.drop()
    options = {
        "wal_level": "logical",
        "max_wal_senders": "20",
        "max_replication_slots": "20",
        "max_logical_replication_workers": "16",
        "max_worker_processes": "24",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_retrieve_retry_interval": "500",  # ms
    }
    options.update(settings or {})
    args = ["pg_createcluster", version, name, "-p", str(port), "--start"]
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    args += ["--", "--auth-host=trust", "--auth-local=trust"]
    _run(*args)
    return cluster


def drop_stale(prefix: str = PREFIX) -> int:
    """Drop every cluster whose name starts with ``prefix`` (default :data:`PREFIX`: all of
    this module's); returns how many.  Give a narrower prefix than the default when other
    runs (a benchmark, another test session) may own clusters at the same time."""
    if shutil.which("pg_lsclusters") is None:
        return 0
    dropped = 0
    for line in _run("pg_lsclusters", "-h").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith(prefix):
            Cluster(parts[1], int(parts[2]), parts[0]).drop()
            dropped += 1
    return dropped
