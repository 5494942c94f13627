"""Django glue for the announce pipeline: the process's peer store, the cached authority, the
client address rule and the in-process statistics flusher (embedded default)."""

from __future__ import annotations

import ipaddress
import logging
import threading
from functools import cache as memoize

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest

from tracker import authcache
from tracker.announce.handler import (
    DEFAULT_BLACKLISTED_PORTS,
    MemberStanding,
    Policy,
    TorrentStanding,
)
from tracker.announce.store import MemoryPeerStore
from tracker.announce.swarm import Rules
from tracker.models import Torrent
from tracker.services.stats import stats_flush

log = logging.getLogger(__name__)

_store = MemoryPeerStore()
_flusher_lock = threading.Lock()
_flusher: threading.Thread | None = None


def peer_store() -> MemoryPeerStore:
    """This process's peer store."""
    return _store


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
        ),
        min_ratio=settings.MIN_RATIO,
        grace_bytes=settings.PBTS_RATIO_GRACE_BYTES,
        blacklisted_ports=frozenset(settings.PBTS_BLACKLISTED_PORTS or DEFAULT_BLACKLISTED_PORTS),
    )


class CachedAuthority:
    """Answers the pipeline's questions from the shared cache (``tracker.authcache``)."""

    def member(self, passkey: str) -> MemberStanding | None:
        return authcache.member_standing(passkey)

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        return authcache.torrent_standing(info_hash_hex)

    def client_allowed(self, peer_id: bytes) -> bool:
        return peer_id.startswith(authcache.allowed_client_prefixes())


def client_ip(request: HttpRequest) -> str:
    """The announcing client's address: the socket address, or, only when the request comes
    from a proxy in ``PBTS_TRUSTED_PROXIES``, the right-most X-Forwarded-For entry that is not
    itself a trusted proxy."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.PBTS_TRUSTED_PROXIES
    if remote not in trusted:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for candidate in reversed([part.strip() for part in forwarded.split(",")]):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break
        if candidate not in trusted:
            return candidate
    return remote


def snatch_counts(torrent_ids: set[int]) -> dict[int, int]:
    """``{torrent_id: snatches}`` from the database (BEP 48 ``downloaded``)."""
    if not torrent_ids:
        return {}
    return dict(Torrent.objects.filter(id__in=torrent_ids).values_list("id", "snatches"))


def flush_now() -> bool:
    """Reap stale peers and flush this process's accumulated credits to the database.

    A failed flush puts the batch back into the store, so nothing is lost. Returns ``True`` if
    a batch was applied.
    """
    _store.reap(max_age=settings.PBTS_PEER_TIMEOUT)
    batch = _store.take_batch()
    if not batch:
        return False
    try:
        return stats_flush(batch=batch)
    except Exception:
        _store.return_batch(batch)
        raise


def _flush_loop(stop: threading.Event) -> None:
    while not stop.wait(settings.PBTS_FLUSH_SECONDS):
        try:
            flush_now()
        except Exception:
            log.exception("statistics flush failed; the batch is kept for the next try")
        finally:
            close_old_connections()


def ensure_flusher() -> None:
    """Start the in-process flusher thread once per process (idempotent)."""
    global _flusher
    if _flusher is not None:
        return
    with _flusher_lock:
        if _flusher is None:
            _flusher = threading.Thread(
                target=_flush_loop, args=(threading.Event(),), name="pbts-flush", daemon=True
            )
            _flusher.start()
