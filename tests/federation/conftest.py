"""Three PostgreSQL clusters (provinces 11 and 44, the national hub) for the federation tests.

Made with ``pg_createcluster`` on loopback ports 55400, 55411 and 55444 (``wal_level =
logical``), and one at ``wal_level = replica`` on 55401 (to be refused), once per test
session and dropped afterwards.  Where clusters cannot be made
(no ``pg_createcluster``, not root) the tests skip with the reason; in CI
(``CI=true``) that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import attrs
import pytest

from studentstatus.testing import pg_clusters

IN_CI = os.environ.get("CI") == "true"
PORTS = {"hub": 55400, "11": 55411, "44": 55444, "replica": 55401}
SETTINGS = {"replica": {"wal_level": "replica"}}  # a server logical replication cannot use


@attrs.define
class Nodes:
    """The clusters by role: ``hub``, ``"11"``, ``"44"``."""

    clusters: dict[str, pg_clusters.Cluster]

    def url(self, node: str) -> str:
        return self.clusters[node].url("postgres")


@pytest.fixture(scope="session")
def nodes() -> Iterator[Nodes]:
    why = pg_clusters.unavailable()
    if why is not None:
        if IN_CI:
            pytest.fail(f"CI must run the federation tests on real clusters: {why}")
        pytest.skip(f"no throwaway PostgreSQL clusters here: {why}")
    name = f"{pg_clusters.PREFIX}_test_"
    pg_clusters.drop_stale(name)  # a killed run's leftovers (not a benchmark's clusters)
    made: dict[str, pg_clusters.Cluster] = {}
    try:
        for node, port in PORTS.items():
            made[node] = pg_clusters.create(f"{name}{node}", port, settings=SETTINGS.get(node))
        yield Nodes(made)
    finally:
        for cluster in made.values():
            cluster.drop()
