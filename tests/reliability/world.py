"""A private site for the reliability suite: a database copied from a migrated template on a
:class:`~tests.reliability.kit.PrivatePostgres`, a :class:`~tests.reliability.kit.PrivateRedis`
(cache, peer store and Celery broker), and the site's processes over them (trackerd, Celery
workers with an optional pause point). Also the announce client and the book of what was
sent, which the database must equal once the statistics have landed.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_from_bytes

from celery import Celery
from fastbencode import bdecode

from tests.reliability.kit import (
    PYTHON,
    PrivatePostgres,
    PrivateRedis,
    Proc,
    free_port,
    manage,
    site_env,
    sitectl,
    wait_until,
)

TEMPLATE = "pbts_template"


def migrated_postgres() -> PrivatePostgres:
    """A started private cluster holding database :data:`TEMPLATE`, migrated (~7 s)."""
    pg = PrivatePostgres().start()
    try:
        pg.create_database(TEMPLATE)
        env = site_env(database_url=pg.url(TEMPLATE), redis_url="", prefix="template")
        manage("migrate", "--noinput", env=env)
    except BaseException:
        pg.close()
        raise
    return pg


class PrivateSite:
    """One site: database ``name`` (a copy of the template) on ``pg``, Redis db 0 of ``redis``
    for the cache and peer store, db 1 as the Celery broker. Processes it starts are stopped
    by :meth:`close` (each by its PID).

    ``env`` extras: announces are never refused for coming too soon (min interval 0) or for
    the ratio (``MIN_RATIO`` 0), trackerd shares its peers every 0.2 s.
    """

    def __init__(
        self, pg: PrivatePostgres, redis: PrivateRedis, *, name: str, log_dir: Path, **extra: str
    ) -> None:
        self.pg, self.redis, self.name, self.log_dir = pg, redis, name, log_dir
        pg.create_database(name, template=TEMPLATE)
        self.prefix = f"rel-{name}"
        self.env = site_env(
            database_url=pg.url(name),
            redis_url=redis.url(0),
            broker_url=redis.url(1),
            prefix=self.prefix,
            PBTS_ANNOUNCE_MIN_INTERVAL="0",
            MIN_RATIO="0",
            PBTS_SYNC_SECONDS="0.2",
            **extra,
        )
        self.procs: list[Proc] = []
        self._workers = 0

    # --- processes ------------------------------------------------------------------------

    def trackerd(self, port: int | None = None, **extra: str) -> tuple[Proc, int]:
        """Start ``manage.py trackerd`` (HTTP only) and wait until it listens; ``(proc, port)``."""
        port = port or free_port()
        cmd = [PYTHON, "manage.py", "trackerd", "--port", str(port), "--udp-port", "0"]
        proc = Proc("trackerd", cmd, {**self.env, **extra}, self.log_dir).start()
        self.procs.append(proc)
        proc.wait_listening(port)
        return proc, port

    def worker(
        self,
        *,
        pause: str = "",
        at: int = 1,
        release: Path | None = None,
        beat: bool = False,
        **extra: str,
    ) -> Proc:
        """Start a Celery worker (``-P solo``, one task at a time, in its main process: the
        PID to SIGKILL) on this site's broker and wait until it is ready. ``pause`` names a
        pause point of ``tests.reliability.hooked_worker`` (its ``at``-th call pauses; the
        marker file is :meth:`marker`); ``beat`` embeds Celery beat (``-B``)."""
        self._workers += 1
        name = f"worker{self._workers}"
        cmd = [PYTHON, "-m", "tests.reliability.hooked_worker", "-A", "pbts_site", "worker"]
        cmd += ["-P", "solo", "--concurrency", "1", "--loglevel", "INFO", "-n", f"{name}@rel"]
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if beat:
            cmd += ["-B", "-s", str(self.log_dir / f"{name}-beat-schedule")]
        env = {**self.env, **extra}
        if pause:
            env.update(
                RELIABILITY_PAUSE=pause,
                RELIABILITY_PAUSE_AT=str(at),
                RELIABILITY_MARKER=str(self.marker(name)),
            )
            if release is not None:
                env["RELIABILITY_RELEASE"] = str(release)
        proc = Proc(name, cmd, env, self.log_dir).start()
        self.procs.append(proc)
        proc.wait_log(" ready.", timeout=90)
        return proc

    def marker(self, worker_name: str) -> Path:
        """The file a paused worker writes."""
        return self.log_dir / f"{worker_name}.paused"

    def wait_paused(self, worker: Proc, *, timeout: float = 120.0) -> None:
        """Wait until ``worker`` reached its pause point.

        Raises:
            RuntimeError: it exited or did not get there in time (with its log).
        """

        def paused() -> bool:
            if not worker.alive():
                raise RuntimeError(f"{worker.name} exited:\n{worker.log()}")
            return self.marker(worker.name).exists()

        try:
            wait_until(paused, timeout=timeout, what=f"{worker.name} at its pause point")
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n{worker.log()}") from exc

    def send(self, task: str) -> None:
        """Queue Celery task ``task`` (by name) on this site's broker."""
        app = Celery("reliability", broker=self.redis.url(1))
        try:
            app.send_task(task)
        finally:
            app.close()

    def sitectl(self, command: str, **options: object) -> dict:
        """Run a ``tests.reliability.sitectl`` command on this site's database."""
        return sitectl(command, self.env, **options)

    def close(self) -> None:
        """Stop every process this site started (SIGTERM, then SIGKILL), by PID."""
        for proc in reversed(self.procs):
            proc.stop(timeout=15)

    # --- state ----------------------------------------------------------------------------

    def sql(self, query: str, params: tuple | list | None = None) -> list[tuple]:
        """Rows of ``query`` on this site's database (autocommit)."""
        return self.pg.sql(self.name, query, params)

    def ledgers(self) -> dict[int, tuple[int, int]]:
        """Announced ``(uploaded, downloaded)`` bytes per member id."""
        rows = self.sql("SELECT member_id, uploaded, downloaded FROM reputation_ledger")
        return {m: (u, d) for m, u, d in rows}

    def history(self) -> dict[tuple[int, int], tuple[int, int]]:
        """``(uploaded, downloaded)`` bytes per (member id, torrent id) history row."""
        rows = self.sql(
            "SELECT member_id, torrent_id, uploaded, downloaded FROM tracker_torrenthistory"
        )
        return {(m, t): (u, d) for m, t, u, d in rows}

    def flushed_batches(self) -> int:
        """Statistics batches the database has applied (``tracker_statsflush`` rows)."""
        return self.sql("SELECT count(*) FROM tracker_statsflush")[0][0]

    def redis_key(self, name: str) -> str:
        """A peer-store key: ``<prefix>:tracker:<name>``."""
        return f"{self.prefix}:tracker:{name}"

    def cache_key(self, name: str) -> str:
        """A Django cache key as the site writes it (``<prefix>:1:<name>``)."""
        return f"{self.prefix}:1:{name}"

    def pending_batches(self) -> int:
        """Claimed statistics batches not yet forgotten in Redis."""
        return self.redis.client().scard(self.redis_key("batches"))

    def unclaimed_credits(self) -> int:
        """Items of credit records no flush has claimed yet."""
        return self.redis.client().llen(self.redis_key("credit-log"))

    def stats_settled(self) -> bool:
        """Nothing waits in Redis: no unclaimed credits, no pending batch, no flush running."""
        client = self.redis.client()
        return (
            not client.exists(self.redis_key("credit-log"))
            and not client.scard(self.redis_key("batches"))
            and not self.flush_lock_held()
        )

    def flush_lock_held(self) -> bool:
        """Whether a flush holds its PostgreSQL advisory lock (``tracker.tasks.flush_lock``; a
        bigint key shows in ``pg_locks`` as classid = high 32 bits, objid = low 32 bits)."""
        from tracker.tasks import FLUSH_LOCK_ID

        key = FLUSH_LOCK_ID & 0xFFFFFFFFFFFFFFFF
        rows = self.sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
            [key >> 32, key & 0xFFFFFFFF],
        )
        return rows[0][0] > 0

    def flush_until_settled(self, *, timeout: float = 60.0) -> None:
        """Queue ``tracker.flush_stats`` (a worker must be running) until nothing waits."""

        def settled() -> bool:
            if self.stats_settled():
                return True
            self.send("tracker.flush_stats")
            return False

        wait_until(settled, timeout=timeout, what="statistics flushed", every=1.0)


# --- announces -----------------------------------------------------------------------------


class Announcer:
    """An HTTP/1.1 keep-alive client of trackerd's ``/announce`` (reconnects on error)."""

    def __init__(self, port: int, *, timeout: float = 5.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def announce(
        self,
        passkey: str,
        info_hash: str,
        peer_id: bytes,
        *,
        uploaded: int,
        downloaded: int,
        left: int,
        event: str = "",
        port: int = 51413,
    ) -> dict:
        """One announce; the decoded reply (a ``failure reason`` too).

        Raises:
            OSError, http.client.HTTPException: no reply (the connection is dropped).
        """
        params = [
            ("info_hash", bytes.fromhex(info_hash)),
            ("peer_id", peer_id),
            ("port", str(port).encode()),
            ("uploaded", str(uploaded).encode()),
            ("downloaded", str(downloaded).encode()),
            ("left", str(left).encode()),
            ("compact", b"1"),
            ("numwant", b"10"),
        ]
        if event:
            params.append(("event", event.encode()))
        query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in params)
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request("GET", f"/announce/{passkey}?{query}")
            reply = self.conn.getresponse()
            body = reply.read()
            if reply.status != 200:
                raise http.client.HTTPException(f"HTTP {reply.status}: {body[:200]!r}")
        except BaseException:
            self.close()
            raise
        return bdecode(body)

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Book:
    """What the announces that got an answer credited, in bytes: per member, and per
    (member, torrent). The database must hold exactly this once the statistics landed."""

    ledger: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    history: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )

    def credit(self, member_id: int, torrent_id: int, up: int, down: int) -> None:
        """Record a credit of ``up``/``down`` bytes."""
        for row in (self.ledger[member_id], self.history[(member_id, torrent_id)]):
            row[0] += up
            row[1] += down

    def differences(self, site: PrivateSite, members: list[int]) -> list[str]:
        """What differs between this book and the site's database ([] when equal): every
        listed member's ledger, and every history row with a credit."""
        found: list[str] = []
        ledgers = site.ledgers()
        for member_id in members:
            want = tuple(self.ledger.get(member_id, (0, 0)))
            got = ledgers.get(member_id, (0, 0))
            if got != want:
                found.append(f"ledger of member {member_id}: {got} != sent {want}")
        history = site.history()
        for key, want in self.history.items():
            got = history.get(key, (0, 0))
            if got != tuple(want):
                found.append(f"history {key}: {got} != sent {tuple(want)}")
        for key, got in history.items():
            if key not in self.history and got != (0, 0):
                found.append(f"history {key}: {got}, nothing sent")
        return found


@dataclass
class Peer:
    """One simulated client: a member's peer on a torrent, its totals as it reports them."""

    member_id: int
    passkey: str
    torrent_id: int
    info_hash: str
    peer_id: bytes = b""
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    joined: bool = False


@dataclass
class LoadCounts:
    """Announces sent and how they were answered."""

    sent: int = 0
    ok: int = 0
    joins: int = 0  # answered ``started`` announces (a new peer_id each)
    leaves: int = 0  # answered ``stopped`` announces
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def bad(self) -> int:
        """Error replies and failed requests."""
        return sum(self.failures.values()) + sum(self.errors.values())


class Swarms:
    """Peers joining (``started``), announcing progress and leaving (``stopped``) on the seed
    data's torrents, at most two peers per member and torrent (the per-member limit is 3).
    Every answered announce's credit goes into :attr:`book`.

    Args:
        seed: ``sitectl seed-tracker`` output; pairs: (member, torrent) pairs used;
        leave: chance that a joined peer's announce is ``stopped``; rng: randomness.
    """

    def __init__(self, seed: dict, *, pairs: int, leave: float = 0.05, rng: random.Random) -> None:
        self.rng = rng
        self.leave = leave
        self.book = Book()
        self.counts = LoadCounts()
        members, torrents = seed["members"], seed["torrents"]
        self.peers: list[Peer] = []
        for i in range(pairs):
            member = members[i % len(members)]
            torrent = torrents[(i // len(members) + i) % len(torrents)]
            for _slot in range(2):
                self.peers.append(
                    Peer(member["id"], member["passkey"], torrent["id"], torrent["info_hash"])
                )
        self.member_ids = [m["id"] for m in members]

    def step(self, client: Announcer) -> None:
        """One announce of a random peer: join, progress or leave."""
        peer = self.rng.choice(self.peers)
        if not peer.joined:
            peer.peer_id = b"-TR4060-" + uuid.uuid4().hex[:12].encode()
            peer.uploaded = peer.downloaded = 0
            peer.left = self.rng.choice((0, 1 << 30))
            self._send(client, peer, "started", 0, 0)
            return
        up, down = self.rng.randrange(0, 1 << 20), self.rng.randrange(0, 1 << 20)
        event = "stopped" if self.rng.random() < self.leave else ""
        self._send(client, peer, event, up, down)

    def _send(self, client: Announcer, peer: Peer, event: str, up: int, down: int) -> None:
        self.counts.sent += 1
        try:
            reply = client.announce(
                peer.passkey,
                peer.info_hash,
                peer.peer_id,
                uploaded=peer.uploaded + up,
                downloaded=peer.downloaded + down,
                left=peer.left,
                event=event,
            )
        except Exception as exc:
            self.counts.errors[type(exc).__name__] += 1
            peer.joined = False  # unknown whether it landed: the peer starts afresh
            return
        if b"failure reason" in reply:
            self.counts.failures[reply[b"failure reason"].decode(errors="replace")] += 1
            return
        self.counts.ok += 1
        peer.uploaded += up
        peer.downloaded += down
        if peer.joined:
            self.book.credit(peer.member_id, peer.torrent_id, up, down)
        self.counts.joins += event == "started"
        self.counts.leaves += event == "stopped"
        peer.joined = event != "stopped"


class Load:
    """Steady announces in a background thread: ``rate`` per second (paced, one keep-alive
    connection) from :class:`Swarms` until :meth:`stop`; the slowest answer in seconds and
    the counts at named marks are kept."""

    def __init__(self, swarms: Swarms, port: int, *, rate: float) -> None:
        self.swarms, self.port, self.rate = swarms, port, rate
        self.slowest = 0.0
        self.marks: dict[str, tuple[int, int]] = {}  # name -> (sent, bad) at that moment
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-load", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> Load:
        """Start sending."""
        self._thread.start()
        return self

    def mark(self, name: str) -> None:
        """Remember the counts now under ``name``."""
        self.marks[name] = (self.swarms.counts.sent, self.swarms.counts.bad)

    def _run(self) -> None:
        client = Announcer(self.port)
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                due = started + self.swarms.counts.sent / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                    continue
                before = time.monotonic()
                self.swarms.step(client)
                self.slowest = max(self.slowest, time.monotonic() - before)
        except BaseException as exc:  # a bug of the driver itself: reported by stop()
            self.failure = exc
        finally:
            client.close()

    def stop(self) -> LoadCounts:
        """Stop sending and wait for the thread (bounded); the counts.

        Raises:
            RuntimeError: the driver itself failed (not the tracker).
        """
        self._stop.set()
        self._thread.join(timeout=30)
        if self.failure is not None:
            raise RuntimeError("the load driver failed") from self.failure
        return self.swarms.counts
