"""The two answers to the announce rules' questions (``tracker.announce.rules.Authority``):
who a passkey is, what a torrent is, whether a client is allowed, and a torrent's snatches.

- :class:`CachedAuthority` reads the shared cache (``tracker.authcache``; Redis when
  ``REDIS_URL`` is set): the Django view's, one cache read per question.
- :class:`LocalAuthority` keeps every standing in this process's memory, preloaded in bulk and
  refreshed, and drops an entry the moment the site publishes its invalidation on Redis:
  trackerd's, so its event loop never waits on a query once warm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.db import connections

from tracker import authcache
from tracker.announce.records import MemberStanding, TorrentStanding
from tracker.models import Torrent

log = logging.getLogger(__name__)

SNATCH_SECONDS = 30.0  # how long a torrent's snatch count (scrape ``downloaded``) is reused
MAX_SNATCH_ENTRIES = 100_000


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
    thread repeats that every half TTL, so a running trackerd answers from memory; the rare
    miss (a new member or torrent) is loaded on one helper thread while the event loop waits
    (Django's ORM refuses to run inside the event loop, and such misses are short).
    """

    def __init__(self, *, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}
        self._inner = CachedAuthority()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbts-auth")
        self._forgotten: set[str] | None = None
        self._snatches: dict[int, tuple[float, int]] = {}

    def _get(self, key: str, load: Callable[[], Any]) -> Any:
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        value = self._loader.submit(load).result(timeout=10)
        self._entries[key] = (now + self._ttl, value)
        return value

    def preload(self) -> int:
        """Load every standing in bulk (on the loader thread); returns how many. Keys
        invalidated while it runs are dropped again afterwards, so nothing stale survives."""
        self._forgotten = set()
        try:
            fresh = self._loader.submit(self._load_all).result(timeout=600)
            self._entries.update(fresh)
            for key in self._forgotten:
                self._entries.pop(key, None)
        finally:
            self._forgotten = None
        return len(fresh)

    def _load_all(self) -> dict[str, tuple[float, Any]]:
        expires = time.monotonic() + self._ttl
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
        return self._get(authcache.passkey_key(passkey), lambda: self._inner.member(passkey))

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        """The standing of the approved torrent with this 40-hex info_hash, or ``None``."""
        key = authcache.torrent_key(info_hash_hex)
        return self._get(key, lambda: self._inner.torrent(info_hash_hex))

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
