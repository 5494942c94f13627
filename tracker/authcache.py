"""Cache of what the announce path needs to authorize a request, filled from the database.

Entries are keyed by passkey and by info_hash; negative answers are cached too. Whenever
something cached here changes (passkey reset, ban, download switch, torrent status, freeleech),
the service making the change calls one ``invalidate_*`` function, so the old passkey stops
working at once on every process that shares the cache (Redis when ``REDIS_URL`` is set).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from reputation.policy import site_figures
from reputation.selectors import imported_policy
from tracker.announce.records import MemberStanding, TorrentStanding
from tracker.models import ClientPrefix, Member, Torrent, TorrentStatus

_MISSING = "missing"


def passkey_key(passkey: str) -> str:
    """Cache key of a passkey's standing (also the name published on invalidation)."""
    return f"auth:passkey:{passkey}"


def torrent_key(info_hash_hex: str) -> str:
    """Cache key of a torrent's standing (also the name published on invalidation)."""
    return f"auth:torrent:{info_hash_hex}"


_MEMBER_COLUMNS = (
    "id",
    "is_banned",
    "can_download",
    "is_ratio_exempt",
    "hnr_disabled",
    "ledger__uploaded",
    "ledger__downloaded",
    "ledger__bonus_uploaded",
    "ledger__imported_uploaded",
    "ledger__imported_downloaded",
)


def _member_fields(row: dict) -> dict:
    # The ratio rule's figures: bonus upload (docs/bonus.md) and imported figures per the
    # import policy (docs/chain.md) included, by reputation.policy.site_figures.
    uploaded, downloaded = site_figures(
        uploaded=row["ledger__uploaded"] or 0,
        downloaded=row["ledger__downloaded"] or 0,
        bonus_uploaded=row["ledger__bonus_uploaded"] or 0,
        imported_uploaded=row["ledger__imported_uploaded"] or 0,
        imported_downloaded=row["ledger__imported_downloaded"] or 0,
        imported=imported_policy(),
    )
    return {
        "member_id": row["id"],
        "is_banned": row["is_banned"],
        "can_download": row["can_download"],
        "is_ratio_exempt": row["is_ratio_exempt"],
        "uploaded": uploaded,
        "downloaded": downloaded,
        "hnr_disabled": row["hnr_disabled"],
    }


def _member_row(passkey: str) -> dict | None:
    row = Member.objects.filter(passkey=passkey, is_active=True).values(*_MEMBER_COLUMNS).first()
    return None if row is None else _member_fields(row)


def _torrent_row(info_hash_hex: str) -> dict | None:
    row = (
        Torrent.objects.filter(info_hash=info_hash_hex, status=TorrentStatus.APPROVED)
        .values("id", "is_freeleech", "is_double_upload")
        .first()
    )
    return None if row is None else {"torrent_id": row.pop("id"), **row}


def load_member_standing(passkey: str) -> MemberStanding | None:
    """The standing of the member owning ``passkey`` read from the database (no cache), or
    ``None``: for processes that keep their own copy (trackerd's ``LocalAuthority``), so a
    flood of unknown passkeys fills no shared cache."""
    row = _member_row(passkey)
    return None if row is None else MemberStanding(**row)


def load_torrent_standing(info_hash_hex: str) -> TorrentStanding | None:
    """The standing of an approved torrent read from the database (no cache), or ``None``."""
    row = _torrent_row(info_hash_hex)
    return None if row is None else TorrentStanding(**row)


def member_standing(passkey: str) -> MemberStanding | None:
    """Return the standing of the member owning ``passkey`` (32 hex), or ``None`` if unknown."""
    key = passkey_key(passkey)
    hit = cache.get(key)
    if hit is None:
        row = _member_row(passkey)
        hit = _MISSING if row is None else row
        cache.set(key, hit, settings.PBTS_AUTH_CACHE_SECONDS)
    return None if hit == _MISSING else MemberStanding(**hit)


def torrent_standing(info_hash_hex: str) -> TorrentStanding | None:
    """Return the standing of an approved torrent by its 40-hex info_hash, or ``None``."""
    key = torrent_key(info_hash_hex)
    hit = cache.get(key)
    if hit is None:
        row = _torrent_row(info_hash_hex)
        hit = _MISSING if row is None else row
        cache.set(key, hit, settings.PBTS_AUTH_CACHE_SECONDS)
    return None if hit == _MISSING else TorrentStanding(**hit)


def all_standings() -> Iterator[tuple[str, MemberStanding | TorrentStanding]]:
    """Every active member's and approved torrent's standing as ``(cache key, standing)``,
    read in bulk (two streamed queries), for processes that keep their own copy (trackerd
    preloads and refreshes with it instead of loading key by key)."""
    members = Member.objects.filter(is_active=True).values("passkey", *_MEMBER_COLUMNS)
    for row in members.iterator(chunk_size=5000):
        yield passkey_key(row["passkey"]), MemberStanding(**_member_fields(row))
    torrents = Torrent.objects.filter(status=TorrentStatus.APPROVED).values(
        "info_hash", "id", "is_freeleech", "is_double_upload"
    )
    for row in torrents.iterator(chunk_size=5000):
        yield (
            torrent_key(row["info_hash"]),
            TorrentStanding(row["id"], row["is_freeleech"], row["is_double_upload"]),
        )


CLIENTS_KEY = "auth:clients"


def allowed_client_prefixes() -> tuple[bytes, ...]:
    """The whitelisted peer_id prefixes (BEP 20), cached; an empty whitelist allows none."""
    hit = cache.get(CLIENTS_KEY)
    if hit is None:
        hit = tuple(
            p.encode("latin-1")
            for p in ClientPrefix.objects.filter(is_allowed=True).values_list("prefix", flat=True)
        )
        cache.set(CLIENTS_KEY, hit, settings.PBTS_AUTH_CACHE_SECONDS)
    return hit


def invalidate_clients() -> None:
    """Forget the cached client whitelist (call after any whitelist edit)."""
    _forget(CLIENTS_KEY)


def invalidation_channel() -> str:
    """Redis pub/sub channel on which every invalidated key name is published, so processes
    that keep their own copy (trackerd) drop it at once."""
    return f"{settings.PBTS_REDIS_PREFIX}:auth:invalidate"


@functools.cache
def _publisher() -> redis.Redis | None:
    return redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None


def _delete_and_publish(key: str) -> None:
    cache.delete(key)
    client = _publisher()
    if client is not None:
        client.publish(invalidation_channel(), key)


def _forget(key: str) -> None:
    # Delete now, and again once the surrounding transaction commits: a reader that refilled
    # the entry from the old row in between is overwritten.
    _delete_and_publish(key)
    transaction.on_commit(lambda: _delete_and_publish(key))


def invalidate_passkey(passkey: str) -> None:
    """Forget the cached standing for ``passkey`` (call after any change to that member)."""
    _forget(passkey_key(passkey))


def invalidate_torrent(info_hash_hex: str) -> None:
    """Forget the cached standing for a torrent (call after status or freeleech changes)."""
    _forget(torrent_key(info_hash_hex))


__all__ = [
    "MemberStanding",
    "TorrentStanding",
    "allowed_client_prefixes",
    "invalidate_clients",
    "invalidate_passkey",
    "invalidate_torrent",
    "member_standing",
    "torrent_standing",
]
