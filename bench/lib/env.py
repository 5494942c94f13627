"""Where the announce benchmarks run and what every process they start is given.

They own one PostgreSQL database (``pbts_bench``; ``PBTS_BENCH_DATABASE_URL`` picks another)
and Redis db 6 (its brokers: dbs 7-12), which they empty at start and at the end.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tracker.announce.rules import DEFAULT_BLACKLISTED_PORTS

ROOT = Path(__file__).resolve().parent.parent.parent
DATABASE_URL = os.environ.get(
    "PBTS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pbts_bench"
)
DATABASE_NAME = DATABASE_URL.rsplit("/", 1)[1]
REDIS_URL = "redis://127.0.0.1:6379/6"
DOC_PATH = ROOT / "docs" / "bench-announce.md"
TORRENTS = 10_000
MEMBERS = 2_000
CLIENT_PREFIX = "-TR4"
PEER_ID_PREFIX = b"-TR4060-"
SEEDER_SHARE = 0.25
#: Ports the tracker refuses (the bench's peers never use them): the tracker's own list.
BLACKLISTED_PORTS = DEFAULT_BLACKLISTED_PORTS
# Environment knobs that would change what is measured; servers never inherit them.
_DROPPED_ENV = ("MIN_RATIO", "MAX_PEERS", "CONN_MAX_AGE", "CELERY_BROKER_URL")
_SECRET_KEY = secrets.token_urlsafe(40)


def bench_env(prefix: str = "pbts-bench", *, legacy_prefix: bool = False) -> dict[str, str]:
    """The environment of every PBTS process this benchmark starts (and of its own Django),
    with ``prefix`` as the Redis key prefix (``PBTS_REDIS_PREFIX``; ``legacy_prefix`` also sets
    ``PBTS_CACHE_PREFIX``, the name a baseline checkout from before the rename reads).

    Tracker knobs keep their defaults (min interval 900 s, 3 peers per member per torrent);
    only the auth cache lifetime is raised to an hour, so that the 12,000 entries warmed at
    start do not all expire in the middle of a run.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PBTS_") and k not in _DROPPED_ENV
    }
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DEBUG="0",
        SECRET_KEY=_SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PBTS_REDIS_PREFIX=prefix,
        PBTS_AUTH_CACHE_SECONDS="3600",
        PBTS_SPEEDUPS=os.environ["PBTS_SPEEDUPS"],
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
    )
    if legacy_prefix:
        env["PBTS_CACHE_PREFIX"] = prefix
    return env


def build_measured() -> str:
    """Which build of the announce pipeline the PBTS servers run, in words.

    Raises:
        ImportError: the compiled build is asked for but missing or older than its sources
            (run `make speedups`), before any server is started.
    """
    import tracker.announce

    if not tracker.announce.COMPILED:
        return "the .py sources (PBTS_SPEEDUPS=0)"
    import Cython

    return f"compiled with Cython {Cython.__version__} (build/speedups/, PBTS_SPEEDUPS=1)"
