"""Cache of what the announce path needs to authorize a request, filled from the database.

Entries are keyed by passkey and by info_hash; negative answers are cached too. Whenever
something cached here changes (passkey reset, ban, download switch, torrent status, freeleech),
the service making the change calls one ``invalidate_*`` function, so the old passkey stops
working at once on every process that shares the cache (Redis when ``REDIS_URL`` is set).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from tracker.models import Member, Torrent, TorrentStatus

_MISSING = "missing"


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """What authorization needs of a member; ``member_id`` is the primary key."""

    member_id: int
    is_banned: bool
    can_download: bool
    is_ratio_exempt: bool


@dataclass(frozen=True, slots=True)
class TorrentStanding:
    """What authorization and accounting need of a registered torrent."""

    torrent_id: int
    is_freeleech: bool
    is_double_upload: bool


def _passkey_key(passkey: str) -> str:
    return f"auth:passkey:{passkey}"


def _torrent_key(info_hash_hex: str) -> str:
    return f"auth:torrent:{info_hash_hex}"


def member_standing(passkey: str) -> MemberStanding | None:
    """Return the standing of the member owning ``passkey`` (32 hex), or ``None`` if unknown."""
    key = _passkey_key(passkey)
    hit = cache.get(key)
    if hit is None:
        row = (
            Member.objects.filter(passkey=passkey, is_active=True)
            .values("id", "is_banned", "can_download", "is_ratio_exempt")
            .first()
        )
        hit = _MISSING if row is None else {"member_id": row.pop("id"), **row}
        cache.set(key, hit, settings.PBTS_AUTH_CACHE_SECONDS)
    return None if hit == _MISSING else MemberStanding(**hit)


def torrent_standing(info_hash_hex: str) -> TorrentStanding | None:
    """Return the standing of an approved torrent by its 40-hex info_hash, or ``None``."""
    key = _torrent_key(info_hash_hex)
    hit = cache.get(key)
    if hit is None:
        row = (
            Torrent.objects.filter(info_hash=info_hash_hex, status=TorrentStatus.APPROVED)
            .values("id", "is_freeleech", "is_double_upload")
            .first()
        )
        hit = _MISSING if row is None else {"torrent_id": row.pop("id"), **row}
        cache.set(key, hit, settings.PBTS_AUTH_CACHE_SECONDS)
    return None if hit == _MISSING else TorrentStanding(**hit)


def _forget(key: str) -> None:
    # Delete now, and again once the surrounding transaction commits: a reader that refilled
    # the entry from the old row in between is overwritten.
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def invalidate_passkey(passkey: str) -> None:
    """Forget the cached standing for ``passkey`` (call after any change to that member)."""
    _forget(_passkey_key(passkey))


def invalidate_torrent(info_hash_hex: str) -> None:
    """Forget the cached standing for a torrent (call after status or freeleech changes)."""
    _forget(_torrent_key(info_hash_hex))


__all__ = [
    "MemberStanding",
    "TorrentStanding",
    "invalidate_passkey",
    "invalidate_torrent",
    "member_standing",
    "torrent_standing",
]
