"""Fixtures of the reliability suite: a private PostgreSQL cluster (one per session, with a
migrated template database), a private Redis per test, and a factory of private sites on
them. Nothing here touches the machine's shared PostgreSQL or Redis."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

import pytest

from tests.reliability.kit import PrivatePostgres, PrivateRedis
from tests.reliability.world import PrivateSite, migrated_postgres


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """A private cluster with the migrated template database; deleted at the end."""
    pg = migrated_postgres()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis of this test (no persistence); deleted at the end."""
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make_site(
    private_pg: PrivatePostgres, private_redis: PrivateRedis, tmp_path, request
) -> Iterator[Callable[..., PrivateSite]]:
    """``make_site(**env)``: a private site on a fresh copy of the template database; its
    processes are stopped at the end of the test (each by PID)."""
    sites: list[PrivateSite] = []

    def make(*, redis: PrivateRedis | None = None, **extra: str) -> PrivateSite:
        # Unique per test item, parameters included (a name is cut to PostgreSQL's 63 bytes).
        test = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
        digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
        name = f"rel_{test}_{digest}_{len(sites)}"
        site = PrivateSite(private_pg, redis or private_redis, name=name, log_dir=tmp_path, **extra)
        sites.append(site)
        return site

    try:
        yield make
    finally:
        for site in sites:
            site.close()
