"""The process's announce runtime: the Django side of the announce pipeline.

One per process, built from the settings on first use: the peer store (shared through Redis
when ``REDIS_URL`` is set), the announce policy, the client address rule, the background
thread that shares peers and flushes statistics (:func:`flush_now`), and trackerd's assembly
(:func:`serve_trackerd`: the Django-free server of ``tracker.trackerd`` over this runtime and
``tracker.authority.LocalAuthority``). The Django view (``tracker.announce_views``), the pages
that show live counts and the flush task read it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cache as memoize

import redis
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest

from core.forwarded import resolve_client_ip
from tracker.announce.redis_stats import RedisStatsQueue
from tracker.announce.redis_sync import RedisPeerSync
from tracker.announce.rules import DEFAULT_BLACKLISTED_PORTS, Policy, Rules
from tracker.announce.store import MemoryPeerStore
from tracker.announce.udp_tracker import ConnectionIds, ConnectLimiter, UdpTracker, derive_secret
from tracker.authority import LocalAuthority
from tracker.services.stats import stats_flush
from tracker.trackerd import DEFAULT_UDP_HOSTS, TrackerServer, serve

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """This process's tracker state: the peer store and, when Redis is configured, the layer
    that shares it (``sync``) and the queue of credits for the statistics flush (``queue``)."""

    store: MemoryPeerStore
    sync: RedisPeerSync | None = None
    queue: RedisStatsQueue | None = None
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts_at: float = float("-inf")  # time.monotonic() of the last flush that wrote counts


def build_runtime(*, redis_url: str | None = None, clock=time.time) -> Runtime:
    """Build a runtime from settings: in-process only (no ``REDIS_URL``) or shared through
    Redis. ``redis_url`` overrides the setting ('' forces in-process)."""
    url = settings.REDIS_URL if redis_url is None else redis_url
    if not url:
        return Runtime(store=MemoryPeerStore(clock=clock))
    client = redis.Redis.from_url(url)
    store = MemoryPeerStore(clock=clock, journal=True)
    prefix = f"{settings.PBTS_REDIS_PREFIX}:tracker"
    sync = RedisPeerSync(client, store, prefix=prefix, rules=policy().rules)
    return Runtime(store=store, sync=sync, queue=RedisStatsQueue(client, prefix=prefix))


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime, built on first use."""
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = build_runtime()
    return _runtime


def peer_store() -> MemoryPeerStore:
    """This process's peer store, started (``ensure_started``) for every reader.

    A web process that only reads (profile counts, scrape) while trackerd serves the
    announces loads the shared peers from Redis and keeps them in step like an announcing
    process; before, only the announce view started it, so such a process showed 0 seeding.
    """
    ensure_started()
    return runtime().store


@memoize
def policy() -> Policy:
    """Announce rules from settings (read once per process)."""
    return Policy(
        rules=Rules(
            interval=settings.PBTS_ANNOUNCE_INTERVAL,
            min_interval=settings.PBTS_ANNOUNCE_MIN_INTERVAL,
            max_peers=settings.MAX_PEERS,
            default_numwant=min(50, settings.MAX_PEERS),
            max_peers_per_member=settings.PBTS_MAX_PEERS_PER_MEMBER,
            max_credit_rate=settings.PBTS_MAX_CREDIT_RATE,
        ),
        min_ratio=settings.MIN_RATIO,
        grace_bytes=settings.PBTS_RATIO_GRACE_BYTES,
        blacklisted_ports=frozenset(settings.PBTS_BLACKLISTED_PORTS or DEFAULT_BLACKLISTED_PORTS),
    )


def udp_secrets() -> tuple[bytes, bytes]:
    """``(current, previous)`` keys of the UDP connection ids (BEP 15): derived from
    ``PBTS_UDP_SECRET``, or from ``SECRET_KEY`` when it is not set (nothing new to configure),
    and from ``PBTS_UDP_PREVIOUS_SECRET`` (``b""`` when not set). Never logged."""
    current = settings.PBTS_UDP_SECRET or settings.SECRET_KEY
    previous = settings.PBTS_UDP_PREVIOUS_SECRET
    return derive_secret(current), derive_secret(previous) if previous else b""


def client_ip(request: HttpRequest) -> str:
    """The announcing client's address (see :func:`resolve_client_ip`)."""
    return resolve_client_ip(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        settings.PBTS_TRUSTED_PROXIES,
    )


def _counts_due(rt: Runtime) -> bool:
    """Whether this flush also writes torrents' seeders and leechers (at most every
    ``PBTS_COUNTS_SECONDS``: each rewrite of a torrent row touches all its indexes)."""
    now = time.monotonic()
    if now - rt.counts_at < settings.PBTS_COUNTS_SECONDS:
        return False
    rt.counts_at = now
    return True


def _flush_memory(rt: Runtime) -> bool:
    batch = rt.store.take_batch(with_counts=_counts_due(rt))
    if not batch:
        return False
    try:
        return stats_flush(batch=batch)
    except Exception:
        rt.store.return_batch(batch)
        raise


def _flush_redis(rt: Runtime) -> bool:
    assert rt.sync is not None and rt.queue is not None
    if rt.started:  # a process that serves announces pushes its own journal first
        rt.sync.sync()
    rt.queue.claim(with_counts=_counts_due(rt))
    applied = False
    for batch_id in rt.queue.pending():  # includes batches of a flush that died
        applied |= stats_flush(batch=rt.queue.read(batch_id))
        rt.queue.done(batch_id)
    return applied


def flush_now() -> bool:
    """Flush accumulated credits to the database.

    In-process: this process's credits; a failed flush puts the batch back. With Redis: this
    process's journal is pushed first, then every claimed batch is applied and only then
    forgotten, so a flush that dies is re-run (a no-op if it had committed). Returns ``True``
    if a batch was applied.
    """
    rt = runtime()
    return _flush_memory(rt) if rt.sync is None else _flush_redis(rt)


REAP_SECONDS = 30.0


class RedisHealth:
    """Says once that Redis went away and once that it is back, instead of a traceback every
    sync period (0.5 s) while it is down: a warning (no traceback) on the first failed call,
    an info line on the first call that works again. Not thread-safe: one per background
    thread."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: redis.RedisError) -> None:
        """A call to Redis failed (``exc``); logs a warning if it worked before."""
        if not self.down:
            self.down = True
            log.warning(
                "Redis unreachable (%s): announces are answered from this process's memory;"
                " the peer changes are kept and pushed when it is back",
                exc,
            )

    def ok(self) -> None:
        """A call to Redis worked; logs an info line if it had failed before."""
        if self.down:
            self.down = False
            log.info("Redis reachable again: the kept peer changes are pushed")


@dataclass(slots=True)
class _Timers:
    last_flush: float
    last_reap: float


def _background_step(rt: Runtime, health: RedisHealth, timers: _Timers) -> None:
    """One period of the background thread: reap, share, flush (see :func:`_background`).
    Redis failures go to ``health``; anything else is logged with its traceback."""
    try:
        now = time.monotonic()
        if now - timers.last_reap >= REAP_SECONDS:
            timers.last_reap = now
            rt.store.reap(max_age=settings.PBTS_PEER_TIMEOUT)
        if rt.sync is not None:
            rt.sync.sync()
            health.ok()
        if settings.PBTS_INPROCESS_FLUSH and now - timers.last_flush >= settings.PBTS_FLUSH_SECONDS:
            timers.last_flush = now
            flush_now()
    except redis.RedisError as exc:
        health.failed(exc)
    except Exception:
        log.exception("peer sync or statistics flush failed; it is retried")
    finally:
        close_old_connections()


def _background(stop: threading.Event) -> None:
    """Share (every ``PBTS_SYNC_SECONDS``), reap (every ``REAP_SECONDS``) and flush (every
    ``PBTS_FLUSH_SECONDS`` when ``PBTS_INPROCESS_FLUSH``)."""
    rt = runtime()
    period = settings.PBTS_SYNC_SECONDS if rt.sync else settings.PBTS_FLUSH_SECONDS
    started = time.monotonic()
    timers = _Timers(last_flush=started, last_reap=started)
    health = RedisHealth()
    while not stop.wait(period):
        _background_step(rt, health, timers)


def ensure_started() -> None:
    """Once per process: load shared peers from Redis and start the background thread that
    shares the store and flushes statistics (idempotent, cheap after the first call)."""
    rt = runtime()
    if rt.started:
        return
    with rt.lock:
        if rt.started:
            return
        if rt.sync is not None:
            rt.sync.load()
        wanted = rt.sync is not None or settings.PBTS_INPROCESS_FLUSH
        if wanted and settings.PBTS_TRACKER_THREAD:
            thread = threading.Thread(
                target=_background, args=(threading.Event(),), name="pbts-tracker", daemon=True
            )
            thread.start()
        rt.started = True


# --- trackerd -----------------------------------------------------------------------------


def udp_tracker(authority: LocalAuthority) -> UdpTracker:
    """The UDP front end (BEP 15) over ``authority``, this process's peer store and policy,
    with the connection id secrets (:func:`udp_secrets`) and connect limit from settings."""
    secret, previous = udp_secrets()
    return UdpTracker(
        auth=authority,
        store=runtime().store,
        policy=policy(),
        snatches=authority.snatches,
        ids=ConnectionIds(secret, previous),
        limiter=ConnectLimiter(settings.PBTS_UDP_CONNECTS_PER_MINUTE),
        trusted=frozenset(settings.PBTS_TRUSTED_PROXIES),
    )


async def serve_trackerd(
    host: str,
    port: int,
    *,
    reuse_port: bool,
    ready: threading.Event | None = None,
    stop: asyncio.Event | None = None,
    udp_port: int = 0,
    udp_hosts: tuple[str, ...] = DEFAULT_UDP_HOSTS,
) -> None:
    """Run trackerd (``manage.py trackerd``) in this process until ``stop`` is set (or
    forever): HTTP on ``host``/``port`` and, when ``udp_port`` is not 0, BEP 15 on
    ``udp_port`` of every address in ``udp_hosts``; ``ready`` is set once listening.

    Subscribes to the authorization invalidations (with Redis), preloads every standing and
    refreshes them every half ``PBTS_AUTH_CACHE_SECONDS``, starts this process's runtime
    (:func:`ensure_started`), then serves with ``tracker.trackerd.serve``.

    Raises:
        OSError: a port cannot be bound.
    """
    authority = LocalAuthority(
        ttl=settings.PBTS_AUTH_CACHE_SECONDS,
        negative_size=settings.PBTS_NEGATIVE_CACHE_SIZE,
        negative_seconds=settings.PBTS_NEGATIVE_CACHE_SECONDS,
    )
    try:
        if settings.REDIS_URL:
            authority.listen(redis.Redis.from_url(settings.REDIS_URL)).wait(timeout=10)
        started = time.monotonic()
        loaded = authority.preload()
        log.info("preloaded %d standings in %.1f s", loaded, time.monotonic() - started)
        authority.refresh_forever()
        ensure_started()
        server = TrackerServer(
            authority=authority,
            store=runtime().store,
            policy=policy(),
            snatches=authority.snatches,
            trusted=frozenset(settings.PBTS_TRUSTED_PROXIES),
        )
        udp = udp_tracker(authority) if udp_port else None
        await serve(
            server,
            host,
            port,
            reuse_port=reuse_port,
            udp=udp,
            udp_port=udp_port,
            udp_hosts=udp_hosts,
            ready=ready,
            stop=stop,
        )
    finally:
        authority.close()
