"""The two answers to the announce rules' questions (``tracker.announce.rules.Authority``):
who a passkey is, what a torrent is, whether a client is allowed, and a torrent's snatches.

- :class:`CachedAuthority` reads the shared cache (``tracker.authcache``; Redis when
  ``REDIS_URL`` is set): the Django view's, one cache read per question.
- :class:`LocalAuthority` keeps every standing in this process's memory, preloaded in bulk and
  refreshed, and drops an entry the moment the site publishes its invalidation on Redis:
  trackerd's, so its event loop never waits on a query. Unknown passkeys and info_hashes are
  remembered in a bounded LRU with a time-to-live (``PBTS_NEGATIVE_CACHE_SIZE``,
  ``PBTS_NEGATIVE_CACHE_SECONDS``), and a miss is read on a helper thread while the event loop
  goes on (``records.Pending``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis
from django.db import connections

from tracker import authcache
from tracker.announce.records import MemberStanding, Pending, Refusal, TorrentStanding
from tracker.models import Torrent

log = logging.getLogger(__name__)

SNATCH_SECONDS = 30.0  # how long a torrent's snatch count (scrape ``downloaded``) is reused
MAX_SNATCH_ENTRIES = 100_000
NEGATIVE_CACHE_SIZE = 10_000  # unknown passkeys and info_hashes remembered (LRU)
NEGATIVE_CACHE_SECONDS = 60.0  # how long an unknown one is remembered
MAX_PENDING_LOADS = 1024  # misses queued for the database at once; more are refused
BUSY = "Tracker busy: try again shortly"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def snatch_counts(torrent_ids: set[int]) -> dict[int, int]:
    """``{torrent_id: snatches}`` from the database (BEP 48 ``downloaded``)."""
    if not torrent_ids:
        return {}
    return dict(Torrent.objects.filter(id__in=torrent_ids).values_list("id", "snatches"))


class CachedAuthority:
    """Answers the announce rules' questions from the shared cache (``tracker.authcache``)."""

    def member(self, passkey: str) -> MemberStanding | None:
        """The standing of the member owning ``passkey``, or ``None``."""
        return authcache.member_standing(passkey)

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        """The standing of the approved torrent with this 40-hex info_hash, or ``None``."""
        return authcache.torrent_standing(info_hash_hex)

    def client_allowed(self, peer_id: bytes) -> bool:
        """Whether the client's peer_id starts with a whitelisted prefix (BEP 20)."""
        return peer_id.startswith(authcache.allowed_client_prefixes())


class LocalAuthority:
    """In-process copy of the cached standings, each kept ``ttl`` seconds; entries are dropped
    as soon as their key is published on ``authcache.invalidation_channel()``.

    :meth:`preload` fills it in bulk (every active member and approved torrent) and a refresh
    thread repeats that every half TTL, so a running trackerd answers from memory. A miss (a
    new member or torrent, or a passkey or info_hash nobody has) is read from the database on
    one helper thread (Django's ORM refuses to run inside the event loop); called on an event
    loop, the lookup raises :class:`~tracker.announce.records.Pending` instead of waiting, and
    the server awaits it and asks again, so the loop goes on answering everyone else. Unknown
    keys are remembered in a bounded LRU (``negative_size`` entries, ``negative_seconds``
    each), so a flood of random passkeys costs at most that much memory and a passkey that
    becomes valid later (a new member) is accepted after ``negative_seconds`` at most (at once
    when its invalidation is published).
    """

    def __init__(
        self,
        *,
        ttl: float,
        negative_size: int = NEGATIVE_CACHE_SIZE,
        negative_seconds: float = NEGATIVE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._negative_size = max(1, negative_size)
        self._negative_seconds = negative_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._loading: dict[str, Future] = {}
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbts-auth")
        self._forgotten: set[str] | None = None
        self._snatches: dict[int, tuple[float, int]] = {}

    def _get(self, key: str, load: Callable[..., Any], *args: Any) -> Any:
        """The entry under ``key``, or ``load(*args)`` run on the loader thread (the function
        and its arguments rather than a closure: no object is made on a hit)."""
        hit = self._entries.get(key)
        now = self._clock()
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._lock:
            expires = self._negative.get(key)
            if expires is not None:
                if expires > now:
                    return None
                del self._negative[key]
            future = self._loading.get(key)
            if future is None:  # one load per key, however many ask at once
                if len(self._loading) >= MAX_PENDING_LOADS:
                    raise Refusal(BUSY)  # a flood of misses: known members still get through
                future = self._loader.submit(self._load, key, load, *args)
                self._loading[key] = future
        if _on_event_loop():
            raise Pending(future)
        return future.result(timeout=10)

    def _load(self, key: str, load: Callable[..., Any], *args: Any) -> Any:
        """On the loader thread: read one standing and remember it (positive in the entries,
        ``None`` in the bounded negative LRU)."""
        try:
            value = load(*args)
        finally:
            with self._lock:
                self._loading.pop(key, None)
        now = self._clock()
        with self._lock:
            if value is None:
                self._entries.pop(key, None)
                self._negative[key] = now + self._negative_seconds
                self._negative.move_to_end(key)
                while len(self._negative) > self._negative_size:
                    self._negative.popitem(last=False)
            else:
                self._negative.pop(key, None)
                self._entries[key] = (now + self._ttl, value)
        return value

    def negative_count(self) -> int:
        """How many unknown passkeys and info_hashes are remembered (at most the bound)."""
        return len(self._negative)

    def preload(self) -> int:
        """Load every standing in bulk (on the loader thread); returns how many. Keys
        invalidated while it runs are dropped again afterwards, so nothing stale survives."""
        self._forgotten = set()
        try:
            fresh = self._loader.submit(self._load_all).result(timeout=600)
            self._entries.update(fresh)
            with self._lock:
                for key in fresh:
                    self._negative.pop(key, None)
            for key in self._forgotten:
                self._entries.pop(key, None)
        finally:
            self._forgotten = None
        return len(fresh)

    def _load_all(self) -> dict[str, tuple[float, Any]]:
        expires = self._clock() + self._ttl
        entries = {key: (expires, standing) for key, standing in authcache.all_standings()}
        connections.close_all()
        return entries

    def refresh_forever(self) -> threading.Thread:
        """Start a daemon thread that preloads again every half TTL."""

        def run() -> None:
            while True:
                time.sleep(max(self._ttl / 2, 1.0))
                try:
                    self.preload()
                except Exception:
                    log.exception("auth refresh failed; entries are loaded on demand meanwhile")

        thread = threading.Thread(target=run, name="pbts-auth-refresh", daemon=True)
        thread.start()
        return thread

    def member(self, passkey: str) -> MemberStanding | None:
        """The standing of the member owning ``passkey``, or ``None``."""
        key = authcache.passkey_key(passkey)
        return self._get(key, authcache.load_member_standing, passkey)

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        """The standing of the approved torrent with this 40-hex info_hash, or ``None``."""
        key = authcache.torrent_key(info_hash_hex)
        return self._get(key, authcache.load_torrent_standing, info_hash_hex)

    def client_allowed(self, peer_id: bytes) -> bool:
        """Whether the client's peer_id starts with a whitelisted prefix (BEP 20)."""
        prefixes = self._get(authcache.CLIENTS_KEY, authcache.allowed_client_prefixes)
        return peer_id.startswith(prefixes)

    def snatches(self, torrent_ids: set[int]) -> dict[int, int]:
        """``{torrent_id: snatches}`` (the scrape's ``downloaded``, BEP 48 / BEP 15), reused
        for ``SNATCH_SECONDS``; misses are read in one query on the loader thread, as Django's
        ORM refuses to run inside the event loop."""
        now = time.monotonic()
        out: dict[int, int] = {}
        missing = set()
        for torrent_id in torrent_ids:
            hit = self._snatches.get(torrent_id)
            if hit is not None and hit[0] > now:
                out[torrent_id] = hit[1]
            else:
                missing.add(torrent_id)
        if missing:
            loaded = self._loader.submit(snatch_counts, missing).result(timeout=10)
            if len(self._snatches) > MAX_SNATCH_ENTRIES:
                self._snatches.clear()
            expires = now + SNATCH_SECONDS
            for torrent_id in missing:
                count = loaded.get(torrent_id, 0)
                self._snatches[torrent_id] = (expires, count)
                out[torrent_id] = count
        return out

    def close(self) -> None:
        """Close the loader thread's database connection and stop the thread."""
        self._loader.submit(connections.close_all).result(timeout=10)
        self._loader.shutdown()

    def forget(self, key: str) -> None:
        """Drop one entry (a published cache key such as ``auth:passkey:<passkey>``)."""
        self._entries.pop(key, None)
        with self._lock:
            self._negative.pop(key, None)
        forgotten = self._forgotten
        if forgotten is not None:
            forgotten.add(key)

    def listen(self, client: redis.Redis) -> threading.Event:
        """Start a daemon thread that applies published invalidations; the returned event is
        set once it is subscribed. After a lost connection everything is dropped (anything
        may have been missed) and preloaded again."""
        subscribed = threading.Event()

        def run() -> None:
            while True:
                try:
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(authority_channel := authcache.invalidation_channel())
                    pubsub.get_message(timeout=5)  # the subscribe confirmation
                    self._entries.clear()
                    with self._lock:
                        self._negative.clear()
                    if subscribed.is_set():
                        self.preload()
                    subscribed.set()
                    log.debug("subscribed to %s", authority_channel)
                    for message in pubsub.listen():
                        self.forget(message["data"].decode())
                except redis.RedisError:
                    log.warning("auth invalidation listener lost Redis; reconnecting")
                    time.sleep(1)

        threading.Thread(target=run, name="pbts-auth-listener", daemon=True).start()
        return subscribed
