"""Statistics pipeline benchmark: the database side's CPU per announce, by consumer (issue 17).

Usage (from the project root; PostgreSQL and Redis on 127.0.0.1)::

    .venv/bin/python bench/stats_pipeline.py                       # 5 rounds of this checkout
    .venv/bin/python bench/stats_pipeline.py --baseline /tmp/base  # and another checkout's,
                                                                   # interleaved (A B B A ...)
    .venv/bin/python bench/stats_pipeline.py --announces 40000 --rounds 3 --credited 0.5

What one round measures, in a fresh process of the checkout under test (its own code: the
store, the Redis sync, the flush task):

1. ``--announces`` (120,000) announces as trackerd produces them: authorized
   :class:`~tracker.announce.records.Announce` records applied by a journaling
   ``MemoryPeerStore``, each a fresh (member, torrent) pair over 10,000 torrents and 2,000
   members (event=started, a quarter seeders), on a simulated clock at ``--rate`` (8,000/s);
   ``--credited`` (0) of them are instead re-announces of prefilled peers that credit bytes and
   seeding time (the ledger's path). Every 0.5 simulated seconds the journal is shared as
   trackerd does (``RedisPeerSync.sync``: the batch script, then the replication log read);
   every 3 simulated seconds the Celery task ``tracker.flush_stats`` runs (the real task body:
   the flush lock, ``flush_now``: claim, read, ``stats_flush``, done), with the torrents' counts
   every 15 simulated seconds (``PBTS_COUNTS_SECONDS``), so 120,000 announces are one counts
   period of the default settings.
2. CPU read from ``/proc`` around the sync and the flush calls only: redis-server (whole
   process), every PostgreSQL process (and, apart, the flush's own backend), and the flushing
   process: the flush runs in a process forked before the store is filled, as the Celery
   worker is a process of its own (the sync's Python is trackerd's, shown for information and
   not counted in the database side).

State before every round is the same: every torrent's swarm holds ``--peers-per-torrent`` (70)
prefilled peers in Redis with their history rows in PostgreSQL (written once), what earlier
rounds added is removed, the touched tables are vacuumed and a CHECKPOINT is taken (so every
round pays the same full-page writes). Each checkout gets its own database (``pbts_stats_bench``
or ``PBTS_BENCH_DATABASE_URL``'s name, ``_base`` appended for the baseline: migrations may
differ) and its own key prefix in Redis db 5, which it empties of its own keys only.

Redis and PostgreSQL are shared with whatever else runs on the machine: the figures are medians
of interleaved rounds with their range; the load average is printed with them. ``--own-redis``
starts a private redis-server (no persistence, stopped by its PID at the end) so that the Redis
figures are this benchmark's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/5"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pbts_stats_bench"
TORRENTS = 10_000
MEMBERS = 2_000
SEEDER_EVERY = 4  # every 4th peer is a seeder (bench/announce.py: a quarter)
PREFILL_AT = 1_700_000_000.0  # announced_at of the prefilled peers (simulated seconds)
ROUND_AT = PREFILL_AT + 1800.0  # the simulated clock of a round starts here
PREFILL_CREATED = "2000-01-01T00:00:00Z"  # created_at of prefilled history rows
SYNC_SECONDS = 0.5
FLUSH_SECONDS = 3.0
COUNTS_SECONDS = 15.0
PREFIX_OF = {"this": "pbts-stats-bench", "base": "pbts-stats-bench-base"}
CONSUMERS = (
    ("redis_sync", "Redis: sync (batch script, log read)"),
    ("redis_flush", "Redis: flush (claim, read, done)"),
    ("pg", "PostgreSQL: every process"),
    ("pg_backend", "  of which the flush's backend"),
    ("py_flush", "flush process (Python)"),
    ("total", "database side (Redis + PostgreSQL + flush)"),
    ("py_sync", "trackerd's sync Python (not counted)"),
)


# --- the child: one round in the checkout under test ----------------------------------------


def _setup(root: Path, database_url: str, prefix: str, redis_url: str = REDIS_URL) -> None:
    """Django of the checkout ``root`` on the bench database and ``redis_url`` (db 5)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PBTS_")}
    keep.pop("CELERY_BROKER_URL", None)
    os.environ.clear()
    os.environ.update(keep)
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PBTS_REDIS_PREFIX=prefix,
        DEBUG="0",
        SECRET_KEY="stats-bench-" + "k" * 50,
        LOG_LEVEL="WARNING",
        PBTS_TRACKER_THREAD="false",
        PBTS_SPEEDUPS="0",
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
    )
    import psycopg

    admin, name = database_url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True, connect_timeout=10) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()


def _ensure_rows() -> tuple[list[int], list[int]]:
    """Bench members (with ledgers) and approved torrents; their ids in a fixed order."""
    from django.core.management import call_command

    from bench.lib.data import _ensure_members, _ensure_torrents
    from tracker.models import Member, Torrent

    call_command("migrate", verbosity=0, interactive=False)
    members = list(
        Member.objects.filter(username__startswith="bench")
        .order_by("username")
        .values_list("id", flat=True)
    )
    if len(members) < MEMBERS:
        members = [m for m, _ in _ensure_members(MEMBERS)]
    torrents = list(
        Torrent.objects.filter(name__startswith="Bench torrent")
        .order_by("name")
        .values_list("id", flat=True)
    )
    if len(torrents) < TORRENTS:
        _ensure_torrents(TORRENTS, uploader_id=members[0])
        torrents = list(
            Torrent.objects.filter(name__startswith="Bench torrent")
            .order_by("name")
            .values_list("id", flat=True)
        )
    return members[:MEMBERS], torrents[:TORRENTS]


def _member(members: list[int], ti: int, k: int) -> int:
    """The member of peer ``k`` of torrent index ``ti`` (distinct for k < MEMBERS)."""
    return members[(ti * 131 + k * 29) % len(members)]


def _peer_id(ti: int, k: int) -> bytes:
    return b"-TR4060-" + b"%07d%05d" % (ti, k)


def _prefill_state(members, ti: int, k: int):
    from tracker.announce.records import Event, PeerState

    seeder = k % SEEDER_EVERY == 0
    port = 1025 + (ti * 7 + k) % 60000
    return PeerState(
        member_id=_member(members, ti, k),
        peer_id=_peer_id(ti, k),
        compact4=bytes((127, 0, (k >> 8) & 255, k & 255)) + port.to_bytes(2, "big"),
        compact6=b"",
        uploaded=1 << 20,
        downloaded=0 if seeder else 1 << 20,
        left=0 if seeder else 1 << 30,
        event=Event.STARTED,
        announced_at=PREFILL_AT,
    )


def _prefill(client, prefix: str, members, torrents, peers: int) -> bool:
    """Write the prefilled swarms (Redis) and their history rows (PostgreSQL) once; returns
    whether it had to."""
    from django.db import connection

    marker = f"{prefix}:bench-prefill"
    want = f"{len(members)}:{len(torrents)}:{peers}:{torrents[0]}:{members[0]}".encode()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracker_torrenthistory WHERE created_at = %s", [PREFILL_CREATED]
        )
        rows = cursor.fetchone()[0]
    redis_ok, rows_ok = client.get(marker) == want, rows == len(torrents) * peers
    if redis_ok and rows_ok:
        return False
    if not redis_ok:
        _prefill_redis(client, prefix, members, torrents, peers)
        client.set(marker, want)
    if not rows_ok:
        _prefill_rows(members, torrents, peers)
    return True


def _prefill_redis(client, prefix: str, members, torrents, peers: int) -> None:
    from tracker.announce.records import peer_key
    from tracker.announce.redis_sync import pack_state

    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    pipe = client.pipeline(transaction=False)
    for ti, torrent_id in enumerate(torrents):
        fields = {}
        for k in range(peers):
            state = _prefill_state(members, ti, k)
            fields[peer_key(state.member_id, state.peer_id)] = pack_state(state)
        pipe.hset(f"{prefix}:tracker:peers:{torrent_id}", mapping=fields)
        if ti % 500 == 499:
            pipe.execute()
    pipe.execute()


def _prefill_rows(members, torrents, peers: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tracker_torrenthistory, tracker_statsflush CASCADE")
        cursor.execute(
            "INSERT INTO tracker_torrenthistory (member_id, torrent_id, uploaded, downloaded,"
            " seed_seconds, completed_at, leeched_at, created_at, updated_at)"
            " SELECT (%s::bigint[])[1 + ((t.idx - 1) * 131 + k * 29) %% %s], t.id, 1048576,"
            " 0, 0, NULL, CASE WHEN k %% %s = 0 THEN NULL ELSE %s::timestamptz END,"
            " %s::timestamptz, %s::timestamptz"
            " FROM unnest(%s::bigint[]) WITH ORDINALITY t(id, idx), generate_series(0, %s) k",
            [
                members,
                len(members),
                SEEDER_EVERY,
                PREFILL_CREATED,
                PREFILL_CREATED,
                PREFILL_CREATED,
                torrents,
                peers - 1,
            ],
        )


def _prefill_counts(peers: int) -> tuple[int, int]:
    seeders = (peers + SEEDER_EVERY - 1) // SEEDER_EVERY
    return seeders, peers - seeders


def _reset(client, prefix: str, members, torrents, peers: int, per_torrent: int, credited: int):
    """Back to the prefilled state: this checkout's round keys, the fresh peers and history
    rows of earlier rounds, the re-announced peers' states, the counts; vacuum, checkpoint."""
    from django.db import connection

    from tracker.announce.records import peer_key
    from tracker.announce.redis_sync import pack_state

    base = f"{prefix}:tracker"
    for pattern in ("peerlog", "credit-log", "dirty", "batches", "batch:*", "push:*"):
        for key in client.scan_iter(match=f"{base}:{pattern}", count=1000):
            client.delete(key)
    seeders, leechers = _prefill_counts(peers)
    client.delete(f"{base}:counts")
    pipe = client.pipeline(transaction=False)
    for ti, torrent_id in enumerate(torrents):
        hkey = f"{base}:peers:{torrent_id}"
        fresh = [
            peer_key(_member(members, ti, k), _peer_id(ti, k))
            for k in range(peers, peers + per_torrent + 1)
        ]
        pipe.hdel(hkey, *fresh)
        again = {}
        for k in range(min(credited, peers)):
            state = _prefill_state(members, ti, k)
            again[peer_key(state.member_id, state.peer_id)] = pack_state(state)
        if again:
            pipe.hset(hkey, mapping=again)
        pipe.hset(
            f"{base}:counts", mapping={f"{torrent_id}:s": seeders, f"{torrent_id}:l": leechers}
        )
        if ti % 500 == 499:
            pipe.execute()
    pipe.execute()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tracker_torrenthistory WHERE created_at <> %s", [PREFILL_CREATED]
        )
        cursor.execute(
            "UPDATE tracker_torrenthistory SET uploaded = 1048576, downloaded = 0,"
            " seed_seconds = 0, updated_at = created_at WHERE updated_at <> created_at"
        )
        cursor.execute("TRUNCATE tracker_statsflush")
        cursor.execute(
            "UPDATE tracker_torrent SET seeders = %s, leechers = %s, snatches = 0"
            " WHERE id = ANY(%s) AND (seeders <> %s OR leechers <> %s OR snatches <> 0)",
            [seeders, leechers, torrents, seeders, leechers],
        )
        cursor.execute(
            "UPDATE reputation_ledger SET clamped_announces = 0 WHERE clamped_announces <> 0"
        )
        for table in ("tracker_torrenthistory", "tracker_torrent", "reputation_ledger"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("CHECKPOINT")


def _announces(members, torrents, peers: int, count: int, credited_share: float):
    """Yield ``(announce, replicated prior state or None)`` in trackerd's order: fresh pairs
    spread over every torrent, ``credited_share`` of them re-announces of prefilled peers."""
    from tracker.announce.records import Announce, AnnounceRequest, Event, TorrentStanding

    standings = [TorrentStanding(t, False, False) for t in torrents]
    every = round(1 / credited_share) if credited_share > 0 else 0
    fresh = again = 0
    for j in range(count):
        if every and j % every == 0:
            ti, k = again % len(torrents), again // len(torrents)
            again += 1
            prior = _prefill_state(members, ti, k)
            seeder = prior.left == 0
            request = AnnounceRequest(
                info_hash=b"",
                peer_id=prior.peer_id,
                port=int.from_bytes(prior.compact4[4:], "big"),
                uploaded=prior.uploaded + (j % 97 + 1) * 65536,
                downloaded=prior.downloaded + (0 if seeder else (j % 89 + 1) * 65536),
                left=0 if seeder else prior.left - (j % 89 + 1) * 65536,
                event=Event.NONE,
                numwant=50,
                compact=True,
                no_peer_id=True,
                key=b"",
                passkey="",
                ipv4="",
                ipv6="",
            )
            yield Announce(request, prior.member_id, prior.compact4, b"", standings[ti]), prior
            continue
        ti, k = fresh % len(torrents), peers + fresh // len(torrents)
        fresh += 1
        port = 1025 + (ti * 7 + k) % 60000
        request = AnnounceRequest(
            info_hash=b"",
            peer_id=_peer_id(ti, k),
            port=port,
            uploaded=0,
            downloaded=0,
            left=0 if k % SEEDER_EVERY == 0 else 1 << 30,
            event=Event.STARTED,
            numwant=50,
            compact=True,
            no_peer_id=True,
            key=b"",
            passkey="",
            ipv4="",
            ipv6="",
        )
        compact4 = bytes((127, 1, (k >> 8) & 255, k & 255)) + port.to_bytes(2, "big")
        yield Announce(request, _member(members, ti, k), compact4, b"", standings[ti]), None


def _backend_cpu(pid: int) -> float:
    from bench.lib.procs import CLK_TCK

    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return sum(int(v) for v in fields[11:13]) / CLK_TCK


class _Flusher:
    """The Celery worker's part: a process forked from this one (Django set up, no store yet)
    that runs the task ``tracker.flush_stats`` when asked, over its own database connection,
    and answers with its own CPU seconds and its backend's for that call. A separate process,
    as in production: the garbage collector of a process that holds the peer store would
    charge the flush for walking it."""

    def __init__(self) -> None:
        import multiprocessing

        from django.db import connections

        connections.close_all()  # the child opens its own
        ctx = multiprocessing.get_context("fork")
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=self._serve, args=(theirs,), daemon=True)
        self.proc.start()

    @staticmethod
    def _serve(conn) -> None:
        from django.db import connection

        from tracker import announce_runtime, tasks

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        rt = announce_runtime.runtime()
        while (with_counts := conn.recv()) is not None:
            rt.counts_at = float("-inf") if with_counts else time.monotonic()
            p0, b0 = time.process_time(), _backend_cpu(backend)
            tasks.flush_stats()
            conn.send((time.process_time() - p0, _backend_cpu(backend) - b0))
        conn.send(None)

    def flush(self, *, with_counts: bool) -> tuple[float, float]:
        """Run one flush there; ``(its CPU seconds, its PostgreSQL backend's)``."""
        self.conn.send(with_counts)
        return self.conn.recv()

    def close(self) -> None:
        """Stop the process (it ends its loop and exits)."""
        self.conn.send(None)
        self.conn.recv()
        self.proc.join(timeout=30)


def child(args: argparse.Namespace) -> dict:
    """One measured round in this process; returns the CPU seconds by consumer."""
    root = Path(args.root)
    _setup(root, args.database_url, args.prefix, args.redis_url)
    import redis
    from django.conf import settings
    from django.db import connection

    from bench.lib.procs import cpu_since, cpu_snapshot, service_roots
    from tracker import announce_runtime
    from tracker.announce.redis_sync import RedisPeerSync
    from tracker.announce.store import MemoryPeerStore

    client = redis.Redis.from_url(args.redis_url)
    members, torrents = _ensure_rows()
    peers = args.peers_per_torrent
    prefilled = _prefill(client, args.prefix, members, torrents, peers)
    credited = int(args.announces * args.credited)
    fresh = args.announces - credited
    per_torrent = -(-fresh // len(torrents))
    _reset(
        client, args.prefix, members, torrents, peers, per_torrent, -(-credited // len(torrents))
    )

    roots = service_roots()
    redis_roots = [
        p for p in roots if Path(f"/proc/{p}/comm").read_text().strip() == "redis-server"
    ]
    pg_roots = [p for p in roots if p not in redis_roots]
    flusher = _Flusher()  # forked now, before this process fills its store (a small heap)

    clock = [ROUND_AT]
    prefix = f"{settings.PBTS_REDIS_PREFIX}:tracker"
    store = MemoryPeerStore(clock=lambda: clock[0], journal=True)
    rules = announce_runtime.policy().rules
    sync = RedisPeerSync(client, store, prefix=prefix, rules=rules)

    out = dict.fromkeys(
        ("redis_sync", "py_sync", "redis_flush", "pg", "pg_backend", "py_flush"), 0.0
    )
    step = 1.0 / args.rate
    next_sync, next_flush, last_counts = SYNC_SECONDS, FLUSH_SECONDS, 0.0
    flushes = counts_flushes = conflicts = 0

    def do_sync() -> None:
        nonlocal conflicts
        r0, p0 = cpu_snapshot(redis_roots), time.process_time()
        stats = sync.sync()
        out["py_sync"] += time.process_time() - p0
        out["redis_sync"] += cpu_since(r0, redis_roots)
        conflicts += stats.conflicts

    def do_flush(elapsed: float) -> None:
        nonlocal flushes, counts_flushes, last_counts
        due = elapsed - last_counts >= COUNTS_SECONDS - 1e-9
        if due:
            last_counts = elapsed
            counts_flushes += 1
        r0, g0 = cpu_snapshot(redis_roots), cpu_snapshot(pg_roots)
        py, backend = flusher.flush(with_counts=due)
        out["py_flush"] += py
        out["pg_backend"] += backend
        out["pg"] += cpu_since(g0, pg_roots)
        out["redis_flush"] += cpu_since(r0, redis_roots)
        flushes += 1

    started = time.monotonic()
    for j, (ann, prior) in enumerate(
        _announces(members, torrents, peers, args.announces, args.credited)
    ):
        if prior is not None:
            store.replicate(ann.torrent.torrent_id, (prior.member_id, prior.peer_id), prior)
        store.announce(ann, rules=rules)
        elapsed = (j + 1) * step
        clock[0] = ROUND_AT + elapsed
        if elapsed >= next_sync:
            next_sync += SYNC_SECONDS
            do_sync()
        if elapsed >= next_flush:
            next_flush += FLUSH_SECONDS
            do_flush(elapsed)
    do_sync()
    do_flush(args.announces * step + FLUSH_SECONDS)
    wall = time.monotonic() - started
    flusher.close()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE leeched_at IS NOT NULL)"
            " FROM tracker_torrenthistory WHERE created_at <> %s",
            [PREFILL_CREATED],
        )
        rows, leeching = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM tracker_torrenthistory WHERE updated_at <> created_at"
            " AND created_at = %s",
            [PREFILL_CREATED],
        )
        updated = cursor.fetchone()[0]
        cursor.execute(
            "SELECT sum(seeders), sum(leechers) FROM tracker_torrent WHERE id = ANY(%s)",
            [torrents],
        )
        seeders, leechers = cursor.fetchone()
    left = client.exists(f"{prefix}:credit-log") + client.scard(f"{prefix}:batches")
    return {
        **out,
        "announces": args.announces,
        "fresh": fresh,
        "credited": credited,
        "history_rows": rows,
        "history_leeching": leeching,
        "history_updated": updated,
        "seeders": int(seeders or 0),
        "leechers": int(leechers or 0),
        "flushes": flushes,
        "counts_flushes": counts_flushes,
        "conflicts": conflicts,
        "unflushed": left,
        "prefilled": prefilled,
        "wall": wall,
        "load": os.getloadavg()[0],
    }


# --- the parent: rounds, interleaved, and the table -----------------------------------------


def _database_url(variant: str) -> str:
    url = os.environ.get("PBTS_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    return url if variant == "this" else url + "_base"


def _run_round(variant: str, root: Path, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--root",
        str(root),
        "--database-url",
        _database_url(variant),
        "--prefix",
        PREFIX_OF[variant],
        "--announces",
        str(args.announces),
        "--rate",
        str(args.rate),
        "--peers-per-torrent",
        str(args.peers_per_torrent),
        "--credited",
        str(args.credited),
        "--redis-url",
        args.redis_url,
        "--redis-pid",
        str(args.redis_pid),
    ]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} round failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _per_announce(result: dict) -> dict[str, float]:
    n = result["announces"]
    us = {
        key: 1e6 * result[key] / n
        for key in ("redis_sync", "redis_flush", "pg", "pg_backend", "py_flush", "py_sync")
    }
    us["total"] = us["redis_sync"] + us["redis_flush"] + us["pg"] + us["py_flush"]
    return us


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} ({min(values):5.1f}-{max(values):5.1f})"


def _check(variant: str, result: dict, peers: int) -> str:
    """What the round wrote against what it should have: one new history row per fresh pair,
    one updated prefilled row per re-announce, nothing left in Redis."""
    problems = []
    if result["history_rows"] != result["fresh"]:
        problems.append(f"history rows {result['history_rows']} != fresh {result['fresh']}")
    if result["history_updated"] != result["credited"]:
        problems.append(
            f"updated rows {result['history_updated']} != re-announces {result['credited']}"
        )
    if result["unflushed"]:
        problems.append("credits left unflushed")
    return f"{variant}: " + ("; ".join(problems) if problems else "ok")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--announces", type=int, default=120_000)
    parser.add_argument("--rate", type=float, default=8000.0, help="simulated announces/s")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peers-per-torrent", type=int, default=70)
    parser.add_argument("--credited", type=float, default=0.0, help="share of re-announces")
    parser.add_argument("--baseline", type=Path, help="another checkout, run interleaved")
    parser.add_argument(
        "--own-redis",
        action="store_true",
        help="start a private redis-server (no persistence) instead of the machine's db 5,"
        " so that its CPU is this benchmark's alone",
    )
    parser.add_argument("--redis-url", default=REDIS_URL, help=argparse.SUPPRESS)
    parser.add_argument("--redis-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(HERE), help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=_database_url("this"), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=PREFIX_OF["this"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    if args.own_redis:
        return _with_own_redis(args)
    return _rounds(args)


def _with_own_redis(args: argparse.Namespace) -> int:
    """Run the rounds against a redis-server this benchmark starts on a free port (no RDB, no
    AOF) and stops (by its PID) at the end."""
    import socket

    with socket.socket() as sock:  # a free port (bench.lib.procs would import tracker here)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        import redis

        client = redis.Redis(port=port)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the benchmark's redis-server did not start") from None
                time.sleep(0.1)
        args.redis_url, args.redis_pid = f"redis://127.0.0.1:{port}/5", proc.pid
        return _rounds(args)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _rounds(args: argparse.Namespace) -> int:
    variants = [("this", HERE)]
    if args.baseline:
        variants.insert(0, ("base", args.baseline.resolve()))
    results: dict[str, list[dict]] = {name: [] for name, _ in variants}
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for name, root in order:
            result = _run_round(name, root, args)
            results[name].append(result)
            us = _per_announce(result)
            print(
                f"round {r + 1} {name:4s}: database side {us['total']:5.1f} us/announce"
                f" (redis {us['redis_sync'] + us['redis_flush']:4.1f}, pg {us['pg']:4.1f},"
                f" flush py {us['py_flush']:4.1f}); {result['flushes']} flushes"
                f" ({result['counts_flushes']} with counts), load {result['load']:.2f},"
                f" {_check(name, result, args.peers_per_torrent)}",
                flush=True,
            )
    print()
    print(
        f"{args.announces:,} announces per round ({args.credited:.0%} credited re-announces),"
        f" {TORRENTS:,} torrents x {args.peers_per_torrent} prefilled peers, {MEMBERS:,} members,"
        f" {args.rate:,.0f}/s simulated; us of CPU per announce, median (range) of"
        f" {args.rounds} rounds"
    )
    names = [name for name, _ in variants]
    header = (
        "| consumer | " + " | ".join(names) + (" | after/before |" if len(names) == 2 else " |")
    )
    print(header)
    print("|---" * (len(names) + 1 + (len(names) == 2)) + "|")
    per = {name: [_per_announce(r) for r in results[name]] for name in names}
    for key, label in CONSUMERS:
        cells = [_cell([u[key] for u in per[name]]) for name in names]
        line = f"| {label} | " + " | ".join(cells)
        if len(names) == 2:
            before = statistics.median(u[key] for u in per["base"])
            after = statistics.median(u[key] for u in per["this"])
            line += f" | {after / before:.2f}x" if before else " | -"
        print(line + " |")
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:  # import the checkout under test (its tracker, its bench.lib)
        root_at = sys.argv.index("--root") + 1 if "--root" in sys.argv else 0
        sys.path[0] = sys.argv[root_at] if root_at else str(HERE)
    else:
        sys.path[0] = str(HERE)
    raise SystemExit(main())
