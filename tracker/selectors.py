"""Read-side queries of the tracker app, shared by pages, the API and admin."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import OrderBy, Q, QuerySet
from django.db.models.functions import Lower

from tracker.models import Member, Torrent, TorrentStatus

# Browse orders (ties: newest first). Names sort case-insensitively, as people read them.
TORRENT_SORTS: dict[str, str | OrderBy] = {
    "date": "-created_at",
    "size": "-size",
    "seeders": "-seeders",
    "name": Lower("name").asc(),
}


def member_announce_url(member: Member) -> str:
    """The member's personal HTTP announce URL: ``<PBTS_BASE_URL>/announce/<passkey>``."""
    return f"{settings.PBTS_BASE_URL}/announce/{member.passkey}"


def udp_announce_base() -> str:
    """Base of the UDP tracker's URL (BEP 15), ``udp://HOST:PORT``: ``PBTS_UDP_ANNOUNCE_URL``,
    or ``PBTS_BASE_URL``'s host with ``PBTS_UDP_PORT``; ``""`` when UDP is off (port 0)."""
    if not settings.PBTS_UDP_PORT:
        return ""
    if settings.PBTS_UDP_ANNOUNCE_URL:
        return settings.PBTS_UDP_ANNOUNCE_URL
    host = urlsplit(settings.PBTS_BASE_URL).hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"udp://{host}:{settings.PBTS_UDP_PORT}"


def member_udp_announce_url(member: Member) -> str:
    """The member's personal UDP announce URL, ``udp://HOST:PORT/announce/<passkey>`` (the
    client sends the path as BEP 41 URL data); ``""`` when UDP is off."""
    base = udp_announce_base()
    return f"{base}/announce/{member.passkey}" if base else ""


def torrent_visible(*, viewer: Member) -> QuerySet[Torrent]:
    """Torrents ``viewer`` may see: approved ones; staff also see every other state;
    uploaders also see their own pending or rejected torrents (never deleted ones)."""
    qs = Torrent.objects.all()
    if viewer.is_moderator:
        return qs
    return qs.filter(
        Q(status=TorrentStatus.APPROVED)
        | Q(uploader=viewer, status__in=[TorrentStatus.PENDING, TorrentStatus.REJECTED])
    )


def torrent_browse(
    *, query: str = "", category_slug: str = "", sort: str = "date"
) -> QuerySet[Torrent]:
    """Approved torrents for browse and search, without the metainfo blob.

    Args:
        query: words that must all appear in the name (case-insensitive).
        category_slug: limit to one category ('' for all).
        sort: one of ``TORRENT_SORTS`` keys; unknown values sort by date.
    """
    qs = (
        Torrent.objects.filter(status=TorrentStatus.APPROVED)
        .select_related("category", "uploader")
        .defer("metainfo", "description")
    )
    for word in query.split()[:10]:
        qs = qs.filter(name__icontains=word)
    if category_slug:
        qs = qs.filter(category__slug=category_slug)
    return qs.order_by(TORRENT_SORTS.get(sort, "-created_at"), "-id")
