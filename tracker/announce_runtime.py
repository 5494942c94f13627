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
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import close_old_connections, connections
from django.http import HttpRequest

from core.forwarded import resolve_client_ip
from tracker.announce.redis_stats import RedisStatsQueue
from tracker.announce.redis_sync import RedisPeerSync
from tracker.announce.rules import DEFAULT_BLACKLISTED_PORTS, Policy, Rules
from tracker.announce.store import MemoryPeerStore
from tracker.announce.udp_tracker import ConnectionIds, ConnectLimiter, UdpTracker, derive_secret
from tracker.authority import LocalAuthority
from tracker.runtime_config import RuntimeValues, cached_version, publish_version, runtime_values
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


def build_policy(values: RuntimeValues | None = None) -> Policy:
    """Announce rules from settings, with the run-time values (``values``: min ratio, max
    peers, ratio grace, sitewide freeleech; ``None``: the settings') in force."""
    min_ratio = settings.MIN_RATIO if values is None else values.min_ratio
    max_peers = settings.MAX_PEERS if values is None else values.max_peers
    grace = settings.PBTS_RATIO_GRACE_BYTES if values is None else values.ratio_grace_bytes
    return Policy(
        rules=Rules(
            interval=settings.PBTS_ANNOUNCE_INTERVAL,
            min_interval=settings.PBTS_ANNOUNCE_MIN_INTERVAL,
            max_peers=max_peers,
            default_numwant=min(50, max_peers),
            max_peers_per_member=settings.PBTS_MAX_PEERS_PER_MEMBER,
            max_credit_rate=settings.PBTS_MAX_CREDIT_RATE,
            sitewide_freeleech=bool(values and values.sitewide_freeleech),
        ),
        min_ratio=min_ratio,
        grace_bytes=grace,
        blacklisted_ports=frozenset(settings.PBTS_BLACKLISTED_PORTS or DEFAULT_BLACKLISTED_PORTS),
    )


class PolicySource:
    """This process's announce policy (:func:`build_policy`), rebuilt when staff change the
    run-time configuration (``POST /config``, ``tracker.models.RuntimeConfig``).

    Calling it returns the policy in force; at most every ``PBTS_CONFIG_SECONDS`` it reads the
    configuration's version from the shared cache (no query) and, when that differs from the
    version it runs (or is not published), reads the row (one query) and rebuilds. So a change
    takes effect in every process within ``PBTS_CONFIG_SECONDS`` (default 5 s). A failed read
    keeps the policy in force (logged) and is retried after the same period. trackerd never
    calls it on its event loop: :func:`refresh_forever` refreshes on a thread and hands the
    new policy to the servers. ``cache_clear()`` forgets everything (tests that change
    settings)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policy: Policy | None = None
        self._version = -1
        self._checked_at = float("-inf")

    def cache_clear(self) -> None:
        """Forget the policy: the next call builds it again from settings and the row."""
        with self._lock:
            self._policy, self._version, self._checked_at = None, -1, float("-inf")

    def __call__(self) -> Policy:
        current = self._policy
        if (
            current is not None
            and time.monotonic() - self._checked_at < settings.PBTS_CONFIG_SECONDS
        ):
            return current
        return self.refresh()

    def refresh(self, *, force: bool = False) -> Policy:
        """Check the version now (``force``: read the row whatever the cache says) and rebuild
        the policy if it changed; returns the policy in force."""
        with self._lock:
            self._checked_at = time.monotonic()
            current = self._policy
            try:
                published = None if force else cached_version()
                if current is not None and published == self._version:
                    return current
                values = runtime_values()
                publish_version(values.version, replace=False)
            except Exception:
                if current is None:
                    log.exception("run-time configuration unreadable; the settings apply")
                    self._policy = build_policy()
                    return self._policy
                log.exception("run-time configuration unreadable; the policy in force is kept")
                return current
            if current is None or values.version != self._version:
                self._policy = build_policy(values)
                self._version = values.version
                rt = _runtime
                if rt is not None and rt.sync is not None:  # conflicts settled by these rules
                    rt.sync.rules = self._policy.rules
            return self._policy


policy = PolicySource()


def config_refresh_forever(
    apply: Callable[[Policy], None], stop: threading.Event, *, period: float | None = None
) -> threading.Thread:
    """Start a daemon thread that checks the run-time configuration every ``period`` seconds
    (``PBTS_CONFIG_SECONDS``; at least 0.1 s) off the event loop and calls ``apply`` with the
    policy when it changed (trackerd hands it to its HTTP and UDP servers). Stops when
    ``stop`` is set; closes its database connection."""
    seconds = max(settings.PBTS_CONFIG_SECONDS if period is None else period, 0.1)

    def run() -> None:
        last = policy()
        try:
            while not stop.wait(seconds):
                fresh = policy.refresh()
                close_old_connections()
                if fresh is not last:
                    last = fresh
                    try:
                        apply(fresh)
                    except Exception:
                        log.exception("applying the run-time configuration failed")
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="pbts-config-refresh", daemon=True)
    thread.start()
    return thread


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


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (reference counting still frees
    everything the flush drops). A batch of 24,000 credits allocates some 250,000 objects
    (records, keys, rows), which made the collector walk the process's whole heap again and
    again: about 3 us of CPU per announce (bench/stats_pipeline.py). Re-enabled after the
    block only if it was enabled before it (so nested or concurrent flushes end with it on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def flush_now() -> bool:
    """Flush accumulated credits to the database.

    In-process: this process's credits; a failed flush puts the batch back. With Redis: this
    process's journal is pushed first, then every claimed batch is applied and only then
    forgotten, so a flush that dies is re-run (a no-op if it had committed). Returns ``True``
    if a batch was applied. The cyclic garbage collector is paused meanwhile
    (:func:`_cyclic_gc_paused`).
    """
    rt = runtime()
    with _cyclic_gc_paused():
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
    (:func:`ensure_started`), checks the run-time configuration every ``PBTS_CONFIG_SECONDS``
    on a thread (:func:`config_refresh_forever`: a changed policy replaces the servers'), then
    serves with ``tracker.trackerd.serve``.

    Raises:
        OSError: a port cannot be bound.
    """
    config_stop = threading.Event()
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

        def apply(fresh: Policy) -> None:
            server.policy = fresh  # one attribute each: read whole by the next request
            if udp is not None:
                udp.policy = fresh
            log.info(
                "run-time configuration applied (min ratio %s, max peers %d, freeleech %s)",
                fresh.min_ratio,
                fresh.rules.max_peers,
                fresh.rules.sitewide_freeleech,
            )

        config_refresh_forever(apply, config_stop)
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
        config_stop.set()
        authority.close()
