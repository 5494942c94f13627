"""Announce benchmark: opentracker vs the Django view vs ``trackerd``, and memory per peer.

Usage (from the project root; PostgreSQL and Redis on 127.0.0.1, Debian's ``opentracker`` and
``wrk`` installed: ``apt-get install -y opentracker wrk``)::

    .venv/bin/python bench/announce.py            # full run (~6 min), writes docs/bench-announce.md
    .venv/bin/python bench/announce.py --quick    # 3 s runs, 100,000-peer memory test, no doc
    .venv/bin/python bench/announce.py --memory   # memory per peer only (add --quick: 100,000)

Options: ``--duration S`` and ``--rounds N`` override the run length and the number of rounds,
``--targets opentracker,django,trackerd`` picks targets, ``--no-doc`` skips the doc.

What it does, every run (re-runnable; it owns the PostgreSQL database ``pbts_bench`` and Redis
db 6, which it empties at start and at the end):

1. Data: 10,000 approved torrents, 2,000 members with passkeys and ledgers, the ``-TR4`` client
   prefix (created once, reused afterwards); what earlier runs' flushes wrote (history rows,
   torrents' counters) is emptied and ``tracker_torrent`` vacuumed; the auth cache is warmed for
   every PBTS server.
2. Servers, each on a free 127.0.0.1 port: opentracker (whitelist of the same 10,000
   info_hashes, path ``/announce``), the Django view under gunicorn (2 workers x 4 threads),
   and ``manage.py trackerd --workers 1`` and ``--workers 2`` when that command exists. Every
   PBTS server gets its own Redis key prefix, so idle servers never replay another's peers.
3. Load: wrk, 2 threads, 50 connections, replaying a file of distinct announces (a fresh
   ``-TR4060-`` peer per request, event=started, compact=1, numwant=50, random ``left``, the
   (member, torrent) pairs never repeat, so neither ``min interval`` nor the 3-peers-per-member
   limit turns requests into refusals; tracker settings stay at their defaults). Targets are
   interleaved in rounds (A B C A B C ...), in keep-alive and ``Connection: close`` modes. Before
   and after every run a plain HTTP client sends fresh announces and parses the bencoded replies:
   the refusal rate must be ~0.
4. Memory: a fresh subprocess feeds 1,000,000 peers (``--quick``: 100,000) over the 10,000
   torrents into ``MemoryPeerStore.announce()`` and reports the VmRSS growth per peer
   (tracemalloc gives the allocation sites on 100,000); then the Redis peer layout
   (``tracker.announce.redis_sync``) is filled with the same peers and measured with
   ``MEMORY USAGE`` per key and ``INFO memory``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import http.client
import json
import linecache
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The build measured: the compiled one (`make speedups`, tracker/speedups.py) unless the caller
# set PBTS_SPEEDUPS=0 to measure the sources. This process, and every one it starts (servers,
# flushers, memory children, bench/udp.py's), runs the same build.
os.environ["PBTS_SPEEDUPS"] = os.environ.get("PBTS_SPEEDUPS") or "1"

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pbts_bench"
REDIS_URL = "redis://127.0.0.1:6379/6"
DOC_PATH = ROOT / "docs" / "bench-announce.md"
TORRENTS = 10_000
MEMBERS = 2_000
CLIENT_PREFIX = "-TR4"
PEER_ID_PREFIX = b"-TR4060-"
THREADS, CONNECTIONS = 2, 50
MODES = ("keep-alive", "close")
TARGET_BYTES_PER_PEER = 200
SEEDER_SHARE = 0.25
BLACKLISTED_PORTS = {411, 412, 413, 1214, 4662, 6346, 6347, 6699}
MAX_LINES = 1_500_000  # paths per wrk run (bounds wrk's memory)
MIN_RATE = 15_000.0  # announces/s assumed when sizing a path file before any measurement
WARMUP_RUNS = 5
TRACE_PEERS = 100_000  # peers fed under tracemalloc (it slows allocation ~5x)
START_TIMEOUT = 30.0  # seconds a server has to accept connections
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Environment knobs that would change what is measured; servers never inherit them.
_DROPPED_ENV = ("MIN_RATIO", "MAX_PEERS", "CONN_MAX_AGE", "CELERY_BROKER_URL")
DEFAULT_TARGETS = "opentracker,django,trackerd"

# wrk script: each thread keeps every n-th line of the path file (its share), pre-formats the
# requests, and sends them in order; a thread that runs out starts again (counted as a wrap:
# for a PBTS target a repeated peer would be refused as "Announce too soon").
WRK_LUA = r"""
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads, mode = args[1], tonumber(args[2]), args[3]
  local headers = {}
  if mode == "close" then headers["Connection"] = "close" end
  reqs, n, pos, wraps = {}, 0, 0, 0
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == id then
      n = n + 1
      reqs[n] = wrk.format("GET", line, headers)
    end
    k = k + 1
  end
end

function request()
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return reqs[pos]
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("wraps") or 0) end
  io.write(string.format("BENCH_WRAPS %d\n", total))
end
"""


# --- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """What one invocation runs. Durations are seconds."""

    duration: float
    rounds: int
    warmup: float
    settle: float
    samples: int  # fresh announces sampled before and after each run
    memory_peers: int
    targets: tuple[str, ...]
    load: bool
    write_doc: bool
    quick: bool


def parse_args(argv: list[str] | None = None) -> Config | argparse.Namespace:
    """Parse the command line into a :class:`Config` (or the hidden child-mode namespace)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 100,000-peer memory")
    parser.add_argument("--memory", action="store_true", help="memory per peer only")
    parser.add_argument("--duration", type=float, help="seconds per run (10; quick: 3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per target and mode")
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help="comma-separated subset")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument(
        "--memory-child", choices=("store", "trace", "redis"), help=argparse.SUPPRESS
    )
    parser.add_argument("--peers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return args
    quick = args.quick
    full = not (quick or args.memory or args.no_doc) and args.duration is None
    full = full and args.rounds >= 2 and args.targets == DEFAULT_TARGETS
    return Config(
        duration=args.duration or (3.0 if quick else 10.0),
        rounds=max(1, args.rounds),
        warmup=1.0 if quick else 2.0,
        settle=1.0 if quick else 3.0,
        samples=50 if quick else 100,
        memory_peers=100_000 if quick else 1_000_000,
        targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        load=not args.memory,
        write_doc=full,
        quick=quick,
    )


def bench_env(prefix: str = "pbts-bench") -> dict[str, str]:
    """The environment of every PBTS process this benchmark starts (and of its own Django).

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


_SECRET_KEY = secrets.token_urlsafe(40)


# --- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchData:
    """What the load generator needs: 40-hex info_hashes and 32-hex passkeys."""

    info_hashes: list[str]
    passkeys: list[str]


def bench_info_hash(index: int) -> str:
    """The deterministic 40-hex info_hash of bench torrent ``index``."""
    return hashlib.sha1(b"pbts-bench-torrent-%d" % index).hexdigest()


def ensure_database() -> None:
    """Create the ``pbts_bench`` database if it is missing."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
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
        cursor.execute("TRUNCATE tracker_torrenthistory, tracker_statsflush")
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


# --- announce paths ---------------------------------------------------------------------

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
PCT = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


def pct(data: bytes) -> str:
    """Percent-encode bytes as a BitTorrent client does (unreserved characters kept)."""
    return "".join([PCT[b] for b in data])


class PathFactory:
    """Makes announce paths for fresh peers. Peer ``i`` of a target announces torrent
    ``i % T`` with member ``(i // T + 7 t) % M``: no (member, torrent) pair repeats within
    T x M = 20,000,000 peers, and consecutive peers spread over every member."""

    def __init__(self, data: BenchData) -> None:
        self.hashes = [pct(bytes.fromhex(h)) for h in data.info_hashes]
        self.passkeys = data.passkeys
        self._next: dict[str, int] = {}

    def take(self, target: str, count: int, *, passkey_in_path: bool) -> list[str]:
        """``count`` announce paths of peers never used before by ``target``, shuffled."""
        start = self._next.get(target, 0)
        self._next[target] = start + count
        rng = random.Random(f"{target}:{start}")
        torrents, members = len(self.hashes), len(self.passkeys)
        paths = []
        for i in range(start, start + count):
            t = i % torrents
            head = f"/announce/{self.passkeys[(i // torrents + 7 * t) % members]}?"
            paths.append((head if passkey_in_path else "/announce?") + self._query(t, rng))
        rng.shuffle(paths)
        return paths

    def _query(self, torrent: int, rng: random.Random) -> str:
        port = rng.randrange(1025, 65536)
        while port in BLACKLISTED_PORTS:
            port = rng.randrange(1025, 65536)
        left = 0 if rng.random() < SEEDER_SHARE else rng.randrange(1, 1 << 33)
        return (
            f"info_hash={self.hashes[torrent]}&peer_id={pct(PEER_ID_PREFIX + rng.randbytes(12))}"
            f"&port={port}&uploaded=0&downloaded=0&left={left}&corrupt=0"
            f"&key={rng.getrandbits(32):08X}&event=started&numwant=50&compact=1"
            "&no_peer_id=1&supportcrypto=1&redundant=0"
        )


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system, including reaped children) of a process tree."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields:
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / CLK_TCK


def service_roots() -> list[int]:
    """PIDs of the machine's redis-server and PostgreSQL postmaster (read, never touched)."""
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            fields = _stat_fields(int(entry.name))
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip() if fields else ""
        except OSError:
            continue
        if comm == "redis-server" or (comm == "postgres" and parent != "postgres"):
            roots.append(int(entry.name))
    return roots


def services_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by Redis and PostgreSQL (what the PBS servers ask of them)."""
    return sum(tree_cpu_seconds(pid) for pid in roots)


@dataclass
class Server:
    """A server process this benchmark started."""

    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    flusher: subprocess.Popen | None = None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(name: str, cmd: list[str], *, port: int, env: dict, workdir: Path) -> Server:
    """Start ``cmd`` and wait (bounded) until it accepts connections on ``port``.

    Raises:
        RuntimeError: it exited or did not listen within ``START_TIMEOUT`` (it is stopped).
    """
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"{name} did not listen on {port} within {START_TIMEOUT:.0f} s")


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def stop_server(server: Server) -> None:
    """SIGTERM the server, wait (bounded), SIGKILL if needed; then SIGKILL any descendant it
    left behind (each by PID, only if it is still the same process)."""
    if server.flusher is not None:
        stop_server(Server(f"{server.name}-celery", server.flusher, 0, server.log_path))
    proc = server.proc
    leftovers = [(pid, _start_time(pid)) for pid in process_tree(proc.pid)[1:]]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for pid, started in leftovers:
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- targets ----------------------------------------------------------------------------


@dataclass
class Target:
    """A tracker under test. ``start`` returns its running server; ``unavailable`` says why
    a target cannot run (its rows then read "not available")."""

    name: str
    passkey_in_path: bool
    start: Callable[[Path], Server] | None
    cache_prefix: str = ""
    unavailable: str = ""
    server: Server | None = None


def start_opentracker(workdir: Path, info_hashes: list[str]) -> Server:
    """opentracker on a free port with the bench info_hashes as its whitelist."""
    binary = shutil.which("opentracker")
    if binary is None:
        raise RuntimeError("opentracker not installed (apt-get install -y opentracker)")
    (workdir / "whitelist.txt").write_text("\n".join(info_hashes) + "\n")
    port = free_port()
    conf = workdir / "opentracker.conf"
    conf.write_text(f"listen.tcp 127.0.0.1:{port}\naccess.whitelist {workdir / 'whitelist.txt'}\n")
    return start_server(
        "opentracker", [binary, "-f", str(conf)], port=port, env={}, workdir=workdir
    )


# Redis databases of each target's Celery broker (the peer store and cache use REDIS_URL's).
_BROKER_DBS = {"django": 7, "trackerd-1w": 8, "trackerd-2w": 9}


def target_env(name: str, prefix: str) -> dict[str, str]:
    """The bench env plus the target's own Celery broker: statistics are flushed to
    PostgreSQL by a Celery worker with beat, as in production, not by the server."""
    env = bench_env(prefix)
    env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{_BROKER_DBS[name]}"
    return env


def start_flusher(server: Server, env: dict[str, str], workdir: Path) -> Server:
    """Start the target's Celery worker with beat (one process, solo pool) beside it."""
    cmd = [sys.executable, "-m", "celery", "-A", "pbts_site", "worker", "-B", "--pool=solo"]
    cmd += ["--loglevel=WARNING", f"--schedule={workdir / f'beat-{server.name}'}"]
    with open(workdir / f"{server.name}-celery.log", "wb") as log:
        server.flusher = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return server


def start_gunicorn(workdir: Path, prefix: str) -> Server:
    """The Django view under gunicorn: 2 workers x 4 threads (gthread), bench env."""
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "pbts_site.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--threads=4",
        "--worker-class=gthread",
        "--log-level=warning",
    ]
    env = target_env("django", prefix)
    server = start_server("django", cmd, port=port, env=env, workdir=workdir)
    return start_flusher(server, env, workdir)


def trackerd_available() -> bool:
    """Whether the ``trackerd`` management command exists in this checkout (now)."""
    return (ROOT / "tracker" / "management" / "commands" / "trackerd.py").is_file()


def start_trackerd(workdir: Path, prefix: str, workers: int) -> Server:
    """``manage.py trackerd --host 127.0.0.1 --port N --workers W`` with the bench env."""
    port = free_port()
    cmd = [sys.executable, "manage.py", "trackerd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--udp-port", "0"]  # UDP: bench/udp.py
    name = f"trackerd-{workers}w"
    env = target_env(name, prefix)
    server = start_server(name, cmd, port=port, env=env, workdir=workdir)
    return start_flusher(server, env, workdir)


def build_targets(cfg: Config, data: BenchData) -> list[Target]:
    """The targets asked for, in interleaving order."""
    targets = []
    if "opentracker" in cfg.targets:
        targets.append(
            Target("opentracker", False, lambda wd: start_opentracker(wd, data.info_hashes))
        )
    if "django" in cfg.targets:
        targets.append(
            Target("django", True, lambda wd: start_gunicorn(wd, "bench-django"), "bench-django")
        )
    if "trackerd" in cfg.targets:
        for workers in (1, 2):
            prefix = f"bench-trackerd{workers}"
            targets.append(
                Target(
                    f"trackerd-{workers}w",
                    True,
                    lambda wd, p=prefix, w=workers: start_trackerd(wd, p, w),
                    prefix,
                    "" if trackerd_available() else "not available",
                )
            )
    return targets


# --- measuring ------------------------------------------------------------------------


@dataclass
class SampleResult:
    """Replies of announces sent one by one with http.client and decoded with fastbencode."""

    sent: int = 0
    ok: int = 0
    refusals: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def add(self, other: SampleResult) -> None:
        """Merge another sample into this one."""
        self.sent += other.sent
        self.ok += other.ok
        self.refusals.update(other.refusals)
        self.errors.update(other.errors)


def _classify(status: int, body: bytes, result: SampleResult) -> None:
    from fastbencode import bdecode

    if status != 200:
        result.errors[f"HTTP {status}"] += 1
        return
    try:
        reply = bdecode(body)
    except Exception:
        result.errors["not bencoded"] += 1
        return
    if not isinstance(reply, dict):
        result.errors["not a dict"] += 1
    elif b"failure reason" in reply:
        result.refusals[reply[b"failure reason"].decode(errors="replace")] += 1
    elif isinstance(reply.get(b"peers"), bytes) and b"interval" in reply:
        result.ok += 1
    else:
        result.errors["reply without peers/interval"] += 1


def sample_replies(port: int, paths: list[str]) -> SampleResult:
    """Send ``paths`` one at a time, each on its own connection (``Connection: close``, 5 s
    timeout), and classify every reply."""
    result = SampleResult()
    for path in paths:
        result.sent += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            _classify(response.status, response.read(), result)
        except (OSError, http.client.HTTPException) as exc:
            result.errors[type(exc).__name__] += 1
        finally:
            conn.close()
    return result


@dataclass
class WrkResult:
    """What one wrk run reports. Latencies are milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    read_errors: int  # the server closed a connection wrk meant to reuse
    other_errors: int  # connect, write and timeout errors
    non_2xx: int
    wraps: int
    output: str

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's ``--latency`` report (and the script's BENCH_WRAPS line).

    Raises:
        ValueError: the output has no request count (wrk failed).
    """
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    if total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    wraps = re.search(r"BENCH_WRAPS (\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1e3,
        p50_ms=_ms(percentile["50"]) if "50" in percentile else float("nan"),
        p99_ms=_ms(percentile["99"]) if "99" in percentile else float("nan"),
        read_errors=int(sock.group(2)) if sock else 0,
        other_errors=sum(int(sock.group(i)) for i in (1, 3, 4)) if sock else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        wraps=int(wraps.group(1)) if wraps else 0,
        output=output,
    )


def run_wrk(port: int, script: Path, paths_file: Path, mode: str, seconds: float) -> WrkResult:
    """wrk with 2 threads, 50 connections, ``--latency``, replaying ``paths_file``."""
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s"]
    cmd += ["--latency", "-s", str(script), f"http://127.0.0.1:{port}/"]
    cmd += ["--", str(paths_file), str(THREADS), mode]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


@dataclass
class RunResult:
    """One timed run of one target in one mode. CPU figures are seconds."""

    target: str
    mode: str
    round: int
    wrk: WrkResult
    server_cpu: float
    services_cpu: float
    wrk_cpu: float
    sample: SampleResult


@dataclass
class Row:
    """All runs of one target in one mode, and the figures the table shows."""

    target: str
    mode: str
    runs: list[RunResult] = field(default_factory=list)
    unavailable: str = ""

    @property
    def requests(self) -> int:
        """Requests over all runs."""
        return sum(r.wrk.requests for r in self.runs)

    @property
    def rate(self) -> float:
        """Announces per second over all runs."""
        seconds = sum(r.wrk.seconds for r in self.runs)
        return self.requests / seconds if seconds else 0.0

    @property
    def p50_ms(self) -> float:
        """Mean of the runs' median latencies (ms)."""
        return sum(r.wrk.p50_ms for r in self.runs) / len(self.runs)

    @property
    def p99_ms(self) -> float:
        """Mean of the runs' 99th-percentile latencies (ms)."""
        return sum(r.wrk.p99_ms for r in self.runs) / len(self.runs)

    @property
    def cpu(self) -> float:
        """Server CPU seconds over all runs."""
        return sum(r.server_cpu for r in self.runs)

    @property
    def services_cpu(self) -> float:
        """Redis + PostgreSQL + the target's Celery flusher: CPU seconds over all runs."""
        return sum(r.services_cpu for r in self.runs)

    @property
    def wrk_cpu(self) -> float:
        """wrk's CPU seconds over all runs."""
        return sum(r.wrk_cpu for r in self.runs)

    def per_announce(self, seconds: float) -> str:
        """``seconds`` of CPU over all runs as microseconds per announce (a table cell)."""
        return f"{1e6 * seconds / self.requests:.0f}" if self.requests else "-"

    @property
    def sample(self) -> SampleResult:
        """Every sampled reply of every run."""
        total = SampleResult()
        for r in self.runs:
            total.add(r.sample)
        return total

    @property
    def errors(self) -> int:
        """Connect, write and timeout errors and non-2xx replies over all runs."""
        return sum(r.wrk.other_errors + r.wrk.non_2xx for r in self.runs)

    @property
    def read_errors(self) -> int:
        """Connections the server closed under wrk over all runs."""
        return sum(r.wrk.read_errors for r in self.runs)

    @property
    def wraps(self) -> int:
        """Times a wrk thread ran out of fresh paths and started again (should be 0)."""
        return sum(r.wrk.wraps for r in self.runs)


class Bench:
    """The load part of a run: servers, warm-up, interleaved rounds, results by (target, mode)."""

    def __init__(self, cfg: Config, data: BenchData, workdir: Path) -> None:
        self.cfg = cfg
        self.factory = PathFactory(data)
        self.workdir = workdir
        self.script = workdir / "replay.lua"
        self.script.write_text(WRK_LUA)
        self.rates: dict[tuple[str, str], float] = {}
        self.rows: dict[tuple[str, str], Row] = {}
        self.warmups: dict[str, list[float]] = {}
        self.service_pids = service_roots()
        self.prefixes: list[str] = []

    def paths_file(self, target: Target, mode: str, seconds: float) -> Path:
        """Write the paths one run needs: twice the best rate seen so far (at least
        ``MIN_RATE``) times ``seconds``, bounded by ``MAX_LINES``."""
        rate = max(self.rates.get((target.name, m), MIN_RATE) for m in MODES)
        count = min(MAX_LINES, int(2 * rate * seconds) + 2000)
        paths = self.factory.take(target.name, count, passkey_in_path=target.passkey_in_path)
        path = self.workdir / f"paths-{target.name}-{mode}.txt"
        path.write_text("\n".join(paths) + "\n")
        return path

    def sample(self, target: Target) -> SampleResult:
        """Sample ``cfg.samples`` fresh announces on the target."""
        paths = self.factory.take(
            target.name, self.cfg.samples, passkey_in_path=target.passkey_in_path
        )
        return sample_replies(target.server.port, paths)

    def warm_up(self, target: Target) -> None:
        """Untimed keep-alive runs until the rate settles (within 15% of the previous one, at
        most ``WARMUP_RUNS``): imports, connections, per-process caches, rate estimate."""
        rates: list[float] = []
        while len(rates) < WARMUP_RUNS:
            paths = self.paths_file(target, MODES[0], self.cfg.warmup)
            result = run_wrk(target.server.port, self.script, paths, MODES[0], self.cfg.warmup)
            rates.append(result.rate)
            self.rates[(target.name, MODES[0])] = max(rates)
            if len(rates) > 1 and abs(rates[-1] - rates[-2]) <= 0.15 * rates[-2]:
                break
        self.warmups[target.name] = rates
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"  warm-up {target.name}: {shown} announces/s", flush=True)

    def measure(self, target: Target, mode: str, round_no: int) -> RunResult:
        """One timed run, with fresh samples before and after."""
        sample = self.sample(target)
        paths = self.paths_file(target, mode, self.cfg.duration)
        if not wait_for_flushes(self.prefixes):
            print("  (statistics still waiting for a flush after 60 s; measuring anyway)")
        time.sleep(self.cfg.settle)
        pid = target.server.proc.pid
        roots = self.service_pids + ([target.server.flusher.pid] if target.server.flusher else [])
        cpu0, svc0 = tree_cpu_seconds(pid), services_cpu_seconds(roots)
        wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = run_wrk(target.server.port, self.script, paths, mode, self.cfg.duration)
        wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1, svc1 = tree_cpu_seconds(pid), services_cpu_seconds(roots)
        sample.add(self.sample(target))
        key = (target.name, mode)
        self.rates[key] = max(self.rates.get(key, 0.0), wrk.rate)
        wrk_cpu = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
        return RunResult(
            target.name, mode, round_no, wrk, cpu1 - cpu0, svc1 - svc0, wrk_cpu, sample
        )

    def run(self, targets: list[Target]) -> list[Row]:
        """Start every available target, warm up, run the interleaved rounds, stop them all."""
        for target in targets:
            for mode in MODES:
                self.rows[(target.name, mode)] = Row(
                    target.name, mode, unavailable=target.unavailable
                )
        try:
            self._start_all(targets)
            live = [t for t in targets if t.server is not None]
            self.prefixes = [t.cache_prefix for t in live if t.cache_prefix]
            for target in live:
                self.warm_up(target)
            for round_no in range(1, self.cfg.rounds + 1):
                for mode in MODES:
                    for target in live:
                        result = self.measure(target, mode, round_no)
                        self.rows[(target.name, mode)].runs.append(result)
                        print_run(result)
        finally:
            for target in targets:
                if target.server is not None:
                    stop_server(target.server)
        return list(self.rows.values())

    def _start_all(self, targets: list[Target]) -> None:
        for target in targets:
            if target.unavailable:
                print(f"  {target.name}: {target.unavailable}", flush=True)
                continue
            try:
                target.server = target.start(self.workdir)
            except RuntimeError as exc:
                target.unavailable = f"failed to start: {str(exc).splitlines()[0]}"
                print(f"  {target.name}: {exc}", flush=True)
                for mode in MODES:
                    self.rows[(target.name, mode)].unavailable = target.unavailable
                continue
            print(f"  {target.name}: pid {target.server.proc.pid}, port {target.server.port}")


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


# --- memory -----------------------------------------------------------------------------


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _announces(peers: int, seed: int = 1):
    """Yield ``(torrent_id, Announce)`` as the handler builds them: fresh bytes, ints and
    strings per announce (peer_id, 6-byte address, 8-char key, counters, event text)."""
    from tracker.announce.swarm import Announce

    rng = random.Random(seed)
    for i in range(peers):
        torrent = i % TORRENTS
        yield (
            torrent + 1,
            Announce(
                member_id=1000 + (i // TORRENTS + 7 * torrent) % MEMBERS,
                peer_id=PEER_ID_PREFIX + rng.randbytes(12),
                compact4=b"\x7f\x00\x00\x01" + rng.randrange(1025, 65536).to_bytes(2, "big"),
                compact6=b"",
                uploaded=rng.randrange(1 << 34),
                downloaded=rng.randrange(1 << 34),
                left=0 if rng.random() < SEEDER_SHARE else rng.randrange(1, 1 << 34),
                event=b"started".decode("ascii"),
                numwant=0,
            ),
        )


# Announces between two drains of the accumulated credits in the memory runs: the statistics
# flush takes them every PBTS_FLUSH_SECONDS, so what stays is the peers.
FLUSH_EVERY = 20_000


def memory_child_store(peers: int) -> dict:
    """(In a fresh process) VmRSS growth of a MemoryPeerStore holding ``peers`` peers."""
    from tracker.announce.store import MemoryPeerStore
    from tracker.announce.swarm import Rules

    rules, store = Rules(), MemoryPeerStore()
    gc.collect()
    before, started = _rss_bytes(), time.perf_counter()
    for n, (torrent_id, ann) in enumerate(_announces(peers), 1):
        store.announce(torrent_id, ann, rules=rules)
        if n % FLUSH_EVERY == 0:
            store.take_batch()  # what the statistics flush takes every few seconds
    store.take_batch()
    seconds = time.perf_counter() - started
    gc.collect()
    return {"peers": peers, "bytes": _rss_bytes() - before, "seconds": seconds}


def memory_child_trace(peers: int) -> dict:
    """(In a fresh process) tracemalloc's count of what the store keeps, by allocation site."""
    from tracker.announce.store import MemoryPeerStore
    from tracker.announce.swarm import Rules

    rules, store = Rules(), MemoryPeerStore()
    feed = _announces(peers)
    tracemalloc.start()
    for n, (torrent_id, ann) in enumerate(feed, 1):
        store.announce(torrent_id, ann, rules=rules)
        if n % FLUSH_EVERY == 0:
            store.take_batch()
    store.take_batch()
    del ann, feed
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    sites = []
    for stat in snapshot.statistics("lineno")[:6]:
        frame = stat.traceback[0]
        code = linecache.getline(frame.filename, frame.lineno).strip()
        sites.append((f"{Path(frame.filename).name}:{frame.lineno} {code[:50]}", stat.size))
    return {"peers": peers, "bytes": traced, "sites": sites}


def redis_sync_module() -> Path | None:
    """The Redis peer-state layout module, if this checkout has one."""
    candidates = sorted((ROOT / "tracker" / "announce").glob("redis*.py"))
    candidates += sorted((ROOT / "tracker").glob("**/sync*.py"))
    return candidates[0] if candidates else None


def memory_child_redis(peers: int) -> dict:
    """(In a fresh process) fill the Redis peer layout of ``tracker.announce.redis_sync`` with
    ``peers`` peers in the bench db, measure it, empty the db."""
    import redis

    from tracker.announce.redis_sync import RedisPeerSync, RedisStatsQueue
    from tracker.announce.store import MemoryPeerStore
    from tracker.announce.swarm import Rules

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    prefix = "benchmem:tracker"
    rules = Rules()
    store = MemoryPeerStore(journal=True)
    sync = RedisPeerSync(client, store, prefix=prefix, rules=rules)
    queue = RedisStatsQueue(client, prefix=prefix)
    try:
        used_before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        for n, (torrent_id, ann) in enumerate(_announces(peers), 1):
            store.announce(torrent_id, ann, rules=rules)
            if n % FLUSH_EVERY == 0 or n == peers:
                sync.push(store.take_journal())
                for batch_id in filter(None, [queue.claim()]):
                    queue.done(batch_id)  # what the statistics flush does every few seconds
        seconds = time.perf_counter() - started
        used_after = client.info("memory")["used_memory"]
        by_kind: Counter = Counter()
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            kind = key.decode().split(":")[2]
            by_kind[kind] += client.memory_usage(key, samples=0) or 0
        listpack = client.config_get("hash-max-listpack-entries")
        return {
            "peers": peers,
            "used_memory": used_after - used_before,
            "by_kind": dict(by_kind),
            "seconds": seconds,
            "listpack_entries": int(next(iter(listpack.values()), 0)),
        }
    finally:
        client.flushdb()


def run_memory_child(kind: str, peers: int, timeout: float = 900) -> dict:
    """Run one memory measurement in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", kind]
    cmd += ["--peers", str(peers)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child {kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class MemoryResult:
    """Bytes per peer of the in-process store and of the Redis layout (None: not measured)."""

    peers: int
    store_bytes_per_peer: float
    store_seconds: float
    trace_peers: int
    trace_bytes_per_peer: float
    trace_sites: list
    redis: dict | None
    redis_note: str

    @property
    def redis_peers_bytes_per_peer(self) -> float | None:
        """``MEMORY USAGE`` of the ``peers`` hashes per peer."""
        return self.redis["by_kind"].get("peers", 0) / self.peers if self.redis else None

    @property
    def redis_keys_bytes_per_peer(self) -> float | None:
        """``MEMORY USAGE`` of every key of the layout (peers, counts, log ...) per peer."""
        return sum(self.redis["by_kind"].values()) / self.peers if self.redis else None

    @property
    def redis_used_bytes_per_peer(self) -> float | None:
        """``INFO memory`` used_memory growth per peer (the whole instance: noisy if others
        use it meanwhile)."""
        return self.redis["used_memory"] / self.peers if self.redis else None


def measure_memory(peers: int) -> MemoryResult:
    """Run the memory children: the store (RSS), tracemalloc (sites), Redis (if present)."""
    print(f"\nMemory per peer, {peers:,} peers over {TORRENTS:,} torrents", flush=True)
    store = run_memory_child("store", peers)
    trace_peers = min(peers, TRACE_PEERS)
    trace = run_memory_child("trace", trace_peers)
    redis_result, note = None, ""
    module = redis_sync_module()
    if module is None:
        note = "redis peer store: not available"
    else:
        try:
            redis_result = run_memory_child("redis", peers)
            note = f"layout of {module.relative_to(ROOT)}"
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            note = f"redis peer store: present ({module.name}) but not measurable: {exc}"
    return MemoryResult(
        peers=peers,
        store_bytes_per_peer=store["bytes"] / peers,
        store_seconds=store["seconds"],
        trace_peers=trace_peers,
        trace_bytes_per_peer=trace["bytes"] / trace_peers,
        trace_sites=[(site, size / trace_peers) for site, size in trace["sites"]],
        redis=redis_result,
        redis_note=note,
    )


# --- output -----------------------------------------------------------------------------


def print_run(r: RunResult) -> None:
    """One line per timed run, as it finishes."""
    w = r.wrk
    print(
        f"  round {r.round} {r.target:12} {r.mode:10} {w.rate:9,.0f}/s  p50 {w.p50_ms:7.2f} ms"
        f"  p99 {w.p99_ms:7.2f} ms  server CPU {r.server_cpu:5.1f} s"
        f"  redis+pg+celery {r.services_cpu:4.1f} s  wrk {r.wrk_cpu:4.1f} s"
        f"  errors {w.other_errors + w.non_2xx}  closed {w.read_errors}  wraps {w.wraps}"
        f"  refused {sum(r.sample.refusals.values())}/{r.sample.sent}",
        flush=True,
    )


def _refusal_cell(row: Row) -> str:
    sample = row.sample
    refused = sum(sample.refusals.values()) + sum(sample.errors.values())
    share = 100.0 * refused / sample.sent if sample.sent else 0.0
    return f"{refused}/{sample.sent} ({share:.1f}%)"


TABLE_HEAD = (
    "target",
    "mode",
    "announces/s",
    "vs opentracker",
    "p50 ms",
    "p99 ms",
    "server CPU s",
    "CPU us/announce",
    "redis+pg+celery CPU s",
    "redis+pg+celery us/announce",
    "wrk us/announce",
    "refused (sampled)",
    "wrk errors",
    "closed by server",
)


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    """The result table as text cells, one tuple per (target, mode)."""
    anchor = {r.mode: r.rate for r in rows if r.target == "opentracker" and r.runs}
    cells = []
    for row in rows:
        if row.unavailable or not row.runs:
            label = row.unavailable or "no runs"
            cells.append((row.target, row.mode, label, *["-"] * (len(TABLE_HEAD) - 3)))
            continue
        ratio = f"{row.rate / anchor[row.mode]:.3f}" if anchor.get(row.mode) else "-"
        cells.append(
            (
                row.target,
                row.mode,
                f"{row.rate:,.0f}",
                ratio,
                f"{row.p50_ms:.2f}",
                f"{row.p99_ms:.2f}",
                f"{row.cpu:.1f}",
                row.per_announce(row.cpu),
                f"{row.services_cpu:.1f}",
                row.per_announce(row.services_cpu),
                row.per_announce(row.wrk_cpu),
                _refusal_cell(row),
                str(row.errors),
                str(row.read_errors),
            )
        )
    return cells


def format_table(head: tuple[str, ...], cells: list[tuple[str, ...]], markdown: bool) -> str:
    """Align a table for the terminal, or write it as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [head, *cells])


def memory_cells(mem: MemoryResult) -> list[tuple[str, ...]]:
    """The memory table: bytes per peer next to the target."""
    target = f"<= {TARGET_BYTES_PER_PEER}"

    def verdict(value: float) -> str:
        return (
            "meets"
            if value <= TARGET_BYTES_PER_PEER
            else f"{value / TARGET_BYTES_PER_PEER:.1f}x over"
        )

    cells = [
        (
            f"in-process MemoryPeerStore, VmRSS growth ({mem.peers:,} peers)",
            f"{mem.store_bytes_per_peer:.0f}",
            target,
            verdict(mem.store_bytes_per_peer),
        ),
        (
            f"in-process MemoryPeerStore, tracemalloc ({mem.trace_peers:,} peers)",
            f"{mem.trace_bytes_per_peer:.0f}",
            target,
            verdict(mem.trace_bytes_per_peer),
        ),
    ]
    if mem.redis is None:
        cells.append((mem.redis_note, "-", target, "-"))
        return cells
    for label, value in (
        ("Redis: peers hashes (MEMORY USAGE)", mem.redis_peers_bytes_per_peer),
        ("Redis: every key incl. peerlog stream (MEMORY USAGE)", mem.redis_keys_bytes_per_peer),
        ("Redis: INFO used_memory growth", mem.redis_used_bytes_per_peer),
    ):
        cells.append((label, f"{value:.0f}", target, verdict(value)))
    return cells


def print_memory(mem: MemoryResult) -> None:
    """The memory section on the terminal."""
    head = ("measure", "bytes/peer", "target", "verdict")
    print(format_table(head, memory_cells(mem), markdown=False))
    print(f"  feeding {mem.peers:,} announces into the store took {mem.store_seconds:.1f} s")
    print("  top allocation sites (tracemalloc, bytes per peer):")
    for site, size in mem.trace_sites:
        print(f"    {size:6.0f}  {site}")
    if mem.redis:
        kinds = ", ".join(
            f"{k} {v / mem.peers:.0f}" for k, v in sorted(mem.redis["by_kind"].items())
        )
        print(f"  Redis by key kind (bytes/peer): {kinds}; {mem.redis_note}")
        print(f"  Redis hash-max-listpack-entries: {mem.redis['listpack_entries']}")


def _version(cmd: list[str], pattern: str = r"(\d+(?:\.\d+)+)") -> str:
    """The first match of ``pattern`` in a command's output (a version number), or '?'."""
    match = re.search(pattern, _cmd_output(cmd))
    return match.group(1) if match else "?"


def _cmd_output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine_facts() -> list[str]:
    """Machine, OS and tool versions for the doc."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    redis_version = _version(["redis-server", "--version"], r"v=(\S+)")
    import django

    return [
        f"CPU: {cpu}, {os.cpu_count()} cores (shared by wrk and the servers); "
        f"RAM {mem_kb / 2**20:.0f} GiB; Linux {platform.release()}",
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"gunicorn {_version([str(Path(sys.executable).parent / 'gunicorn'), '--version'])}",
        f"opentracker {_cmd_output(['dpkg-query', '-W', '-f=${Version}', 'opentracker'])} "
        f"(Debian package, whitelist build), wrk {_version(['wrk', '--version'])}",
        f"PostgreSQL {_version(['psql', '--version'])}, Redis {redis_version}",
        f"Announce pipeline: {build_measured()}",
    ]


def _kept_observations() -> list[str]:
    """The hand-written ``## Observations`` section of the current doc (kept on rewrite)."""
    try:
        text = DOC_PATH.read_text()
    except OSError:
        return []
    start = text.find("\n## Observations")
    return text[start + 1 :].rstrip("\n").splitlines() if start >= 0 else []


def write_doc(cfg: Config, load: LoadResult, mem: MemoryResult, elapsed: float) -> None:
    """Write docs/bench-announce.md from a full run (a hand-written ``## Observations``
    section at its end is carried over)."""
    rows = load.rows
    warmups = "; ".join(
        f"{name} {', '.join(f'{rate:,.0f}' for rate in rates)}"
        for name, rates in load.warmups.items()
    )
    trackerd_note = (
        "`trackerd` was available and measured."
        if trackerd_available()
        else "`trackerd` was not available in this checkout when the figures were taken: its rows "
        "read *not available*; rerun the script once the command exists."
    )
    lines = [
        "# Announce benchmark",
        "",
        f"Figures of a full run of `bench/announce.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({elapsed / 60:.1f} min). Regenerate with `.venv/bin/python bench/announce.py` "
        "(this file is rewritten); `--quick` for a short check.",
        "",
        "## Machine",
        "",
        *[f"- {fact}" for fact in machine_facts()],
        "",
        "## How",
        "",
        f"- {TORRENTS:,} approved torrents, {MEMBERS:,} members with passkeys (database "
        "`pbts_bench`, Redis db 6); opentracker whitelists the same info_hashes.",
        f"- wrk, {THREADS} threads, {CONNECTIONS} connections, {cfg.duration:g} s per run, "
        f"{cfg.rounds} rounds, targets interleaved (A B C A B C), keep-alive and "
        "`Connection: close`. Every request is a fresh peer (`-TR4060-` + 12 random bytes, "
        "event=started, compact=1, numwant=50, random `left`, 25% seeders), and no (member, "
        "torrent) pair repeats, so tracker rules stay at their defaults (min interval 900 s, "
        "3 peers per member per torrent) without refusals.",
        "- The Django view: gunicorn, 2 workers x 4 threads (gthread), DEBUG off, Redis-shared "
        "peer store; auth cache warmed and kept for an hour (`PBTS_AUTH_CACHE_SECONDS=3600`).",
        "- As in production, each PBTS target has its own Celery worker with beat (its own "
        "broker, Redis db 7-9) that flushes the statistics to PostgreSQL every "
        "`PBTS_FLUSH_SECONDS`; the servers only accumulate them in Redis. trackerd preloads "
        "every passkey and torrent at start. Before each timed run the benchmark waits until "
        "no target has statistics waiting for its flusher, so one target's flush backlog does "
        "not load Redis and PostgreSQL during another's run.",
        "- *refused (sampled)*: fresh announces sent one by one before and after each run with "
        "http.client and decoded with fastbencode; failures and malformed replies counted.",
        "- *server CPU*: utime+stime of the server process tree during the runs (/proc); "
        "*redis+pg+celery CPU*: the same for the machine's Redis and PostgreSQL (what the "
        "server asks of them, plus anything else running) and the target's Celery worker; "
        "*us/announce*: those seconds, and wrk's, over the announces answered, so the three "
        "columns show how the 2 cores were shared per announce. "
        "*vs opentracker*: ratio of announces/s in the same mode.",
        "",
        "## Throughput",
        "",
        format_table(TABLE_HEAD, table_rows(rows), markdown=True),
        "",
        trackerd_note,
        "",
        "## Memory per peer",
        "",
        format_table(("measure", "bytes/peer", "target", "verdict"), memory_cells(mem), True),
        "",
        "Top allocation sites of the in-process store (tracemalloc, bytes per peer; "
        "`announce.py` lines are the objects the handler creates per announce and the store "
        "keeps):",
        "",
        *[f"- {size:.0f} B: `{site}`" for site, size in mem.trace_sites],
        "",
        "## Notes",
        "",
        "- opentracker closes the connection after every reply (HTTP/1.1 without a "
        "`Connection: close` header): under keep-alive wrk writes its next request into the "
        "closed connection and reconnects (*closed by server*); both modes are one connection "
        "per announce for it.",
        "- *wrk errors*: connect, write and timeout errors and non-2xx replies. Each run's paths "
        "are sized at twice the best rate seen, so no peer announces twice.",
        f"- Warm-up (untimed keep-alive runs of {cfg.warmup:g} s until the rate settles), "
        f"announces/s: {warmups}.",
        "- wrk and the servers share the 2 cores; *wrk* CPU is printed per run on the terminal.",
        "- Memory: peers' uploaded/downloaded/left are random non-zero counters, peer_id, "
        "address and event fresh objects per announce, as the handler builds them; the "
        f"accumulated credits are taken every {FLUSH_EVERY:,} announces, as the statistics "
        "flush does every few seconds, so what is measured is what the peers hold.",
    ]
    observations = _kept_observations()
    if observations:
        lines += ["", *observations]
    DOC_PATH.write_text("\n".join(lines) + "\n")


# --- main -------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """The load part's figures: a row per (target, mode), warm-up rates per target."""

    rows: list[Row]
    warmups: dict[str, list[float]]


def run_load(cfg: Config) -> LoadResult:
    """Data, servers, interleaved runs (servers stopped on every path)."""
    print("Setting up data (database pbts_bench, Redis db 6) ...", flush=True)
    started = time.monotonic()
    ensure_database()
    setup_django()
    data = ensure_bench_data()
    reset_redis()
    targets = build_targets(cfg, data)
    prefixes = [t.cache_prefix for t in targets if t.cache_prefix and not t.unavailable]
    if prefixes:
        warm_auth_cache(data, prefixes[0])
        for prefix in prefixes[1:]:
            copy_auth_cache(prefixes[0], prefix)
    print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
    print(
        f"Load: wrk {THREADS} threads, {CONNECTIONS} connections, {cfg.duration:g} s per run, "
        f"{cfg.rounds} rounds, modes {', '.join(MODES)}; every request a fresh peer, tracker "
        "settings at their defaults (min interval 900 s kept).",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pbts-bench-"))
    workdir.chmod(0o755)  # opentracker drops to nobody and must still read its whitelist
    try:
        bench = Bench(cfg, data, workdir)
        return LoadResult(bench.run(targets), bench.warmups)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        reset_redis()


def child_main(args: argparse.Namespace) -> None:
    """Hidden mode: one memory measurement in this fresh process, printed as JSON."""
    run = {"store": memory_child_store, "trace": memory_child_trace, "redis": memory_child_redis}
    print(json.dumps(run[args.memory_child](args.peers)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark as the command line asks; print the tables (and write the doc)."""
    cfg = parse_args(argv)
    if isinstance(cfg, argparse.Namespace):
        child_main(cfg)
        return 0
    started = time.monotonic()
    print(f"Announce pipeline: {build_measured()}", flush=True)
    load = run_load(cfg) if cfg.load else None
    mem = measure_memory(cfg.memory_peers)
    print_memory(mem)
    if load:
        print("\nAnnounce throughput (sum of requests / sum of seconds over rounds):")
        print(format_table(TABLE_HEAD, table_rows(load.rows), markdown=False))
        for row in load.rows:
            problems = row.sample.refusals + row.sample.errors if row.runs else Counter()
            if problems:
                print(f"Sampled problems, {row.target} {row.mode}: {dict(problems)}")
            if row.target != "opentracker" and row.wraps:
                print(
                    f"WARNING: {row.target} {row.mode}: wrk reused its paths {row.wraps} times;"
                    " repeated peers may have been refused (Announce too soon)."
                )
    elapsed = time.monotonic() - started
    print(f"\nTotal time: {elapsed / 60:.1f} min")
    if cfg.write_doc and load:
        write_doc(cfg, load, mem, elapsed)
        print(f"Figures written to {DOC_PATH.relative_to(ROOT)}")
    elif not cfg.quick and cfg.load:
        print("Doc not written (only a full default run writes it).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
