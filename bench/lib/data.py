"""The bench data (torrents, members, the client prefix) and the state around a run: the
statistics earlier runs wrote, the Redis db, the auth caches of the servers under test."""

from __future__ import annotations

import hashlib
import os
import random
import time
from dataclasses import dataclass

from bench.lib.env import (
    CLIENT_PREFIX,
    DATABASE_NAME,
    DATABASE_URL,
    MEMBERS,
    REDIS_URL,
    TORRENTS,
    bench_env,
)


@dataclass(frozen=True)
class BenchData:
    """What the load generator needs: 40-hex info_hashes and 32-hex passkeys."""

    info_hashes: list[str]
    passkeys: list[str]


def bench_info_hash(index: int) -> str:
    """The deterministic 40-hex info_hash of bench torrent ``index``."""
    return hashlib.sha1(b"pbts-bench-torrent-%d" % index).hexdigest()


def ensure_database() -> None:
    """Create the bench database (``env.DATABASE_NAME``) if it is missing."""
    import psycopg

    name = DATABASE_NAME
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    """Point this process at the bench database and Redis db, then ``django.setup()``."""
    env = bench_env()
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    os.environ.update(env)
    import django

    django.setup()


def _ensure_members(count: int) -> list[tuple[int, str]]:
    from django.contrib.auth.hashers import make_password

    from reputation.models import Ledger
    from tracker.models import Member, new_passkey

    names = [f"bench{i:05d}" for i in range(count)]
    unusable = make_password(None)
    Member.objects.bulk_create(
        [Member(username=n, passkey=new_passkey(), password=unusable) for n in names],
        ignore_conflicts=True,
        batch_size=1000,
    )
    members = Member.objects.filter(username__in=names)
    members.update(is_active=True, is_banned=False, can_download=True)
    rows = list(members.order_by("username").values_list("id", "passkey"))
    ids = [member_id for member_id, _ in rows]
    Ledger.objects.bulk_create(
        [Ledger(member_id=i) for i in ids], ignore_conflicts=True, batch_size=1000
    )
    Ledger.objects.filter(member_id__in=ids).update(uploaded=0, downloaded=0)
    return rows


def _ensure_torrents(count: int, uploader_id: int) -> list[str]:
    from tracker.models import Category, ClientPrefix, Torrent, TorrentStatus

    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    ClientPrefix.objects.update_or_create(
        prefix=CLIENT_PREFIX, defaults={"name": "Transmission 4 (bench)", "is_allowed": True}
    )
    hashes = [bench_info_hash(i) for i in range(count)]
    rng = random.Random(0)
    rows = []
    for i, info_hash in enumerate(hashes):
        size = rng.randrange(1 << 20, 1 << 34)
        rows.append(
            Torrent(
                info_hash=info_hash,
                name=f"Bench torrent {i:05d}",
                category=category,
                uploader_id=uploader_id,
                metainfo=b"",
                size=size,
                piece_length=1 << 20,
                piece_count=(size + (1 << 20) - 1) >> 20,
                file_count=1,
            )
        )
    Torrent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    Torrent.objects.filter(info_hash__in=hashes).update(status=TorrentStatus.APPROVED)
    return hashes


def ensure_bench_data() -> BenchData:
    """Create (once) and return the bench torrents, members and client prefix; idempotent.
    Every run starts from the same statistics state (:func:`reset_statistics`)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    members = _ensure_members(MEMBERS)
    hashes = _ensure_torrents(TORRENTS, uploader_id=members[0][0])
    reset_statistics()
    return BenchData(info_hashes=hashes, passkeys=[passkey for _, passkey in members])


def reset_statistics() -> None:
    """Empty what earlier runs' flushes wrote (history rows, applied batch ids, torrents'
    counters) and vacuum, so a run neither inherits a larger history table nor the dead rows
    of the torrents' count updates."""
    from django.db import connection

    with connection.cursor() as cursor:
        # CASCADE: rows that refer to history rows (hit-and-runs) go with them (bench data only).
        cursor.execute("TRUNCATE tracker_torrenthistory, tracker_statsflush CASCADE")
        cursor.execute("UPDATE tracker_torrent SET seeders = 0, leechers = 0, snatches = 0")
        cursor.execute("VACUUM ANALYZE tracker_torrent")


def reset_redis() -> None:
    """Empty the bench's own Redis db (auth cache, peer state of earlier runs)."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def copy_auth_cache(source: str, dest: str) -> int:
    """Copy every cache entry of key prefix ``source`` to prefix ``dest`` (Redis COPY keeps the
    TTL), which is much faster than warming ``dest`` again; returns how many keys."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    head = f"{source}:".encode()
    pipe = client.pipeline(transaction=False)
    keys = list(client.scan_iter(match=head + b"*", count=1000))
    for key in keys:
        pipe.copy(key, f"{dest}:".encode() + key[len(head) :], replace=True)
    pipe.execute()
    return len(keys)


def warm_auth_cache(data: BenchData, prefix: str) -> None:
    """Fill the announce auth cache (passkeys, torrents, client whitelist) under ``prefix``,
    as the servers with that ``PBTS_REDIS_PREFIX`` will read it."""
    from django.conf import settings
    from django.test.utils import override_settings

    from tracker import authcache

    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    with override_settings(CACHES=caches):
        authcache.allowed_client_prefixes()
        for passkey in data.passkeys:
            authcache.member_standing(passkey)
        for info_hash in data.info_hashes:
            authcache.torrent_standing(info_hash)


def wait_for_flushes(prefixes: list[str], timeout: float = 60.0) -> bool:
    """Wait (bounded) until no PBTS target has statistics waiting for its Celery flusher, so
    that one target's flush backlog does not load Redis and PostgreSQL during the next
    target's run. Returns whether everything was drained in time."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        pending = sum(
            client.exists(f"{p}:tracker:credit-log") + client.scard(f"{p}:tracker:batches")
            for p in prefixes
        )
        quiet = quiet + 1 if pending == 0 else 0
        if quiet >= 2:  # twice, a sync period apart: nothing was about to be pushed either
            return True
        time.sleep(0.6)
    return False
