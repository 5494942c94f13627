"""Read-side queries of the tracker app, shared by pages, the API and admin."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import F, FilteredRelation, OrderBy, Q, QuerySet
from django.db.models.functions import Lower

from tracker.models import HitAndRunState, Member, Torrent, TorrentStatus

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


# --- A member's history (tracker.views.history, the API's /me/history/) ------------------

HISTORY_SECTIONS: dict[str, str] = {
    "snatched": "Snatched",
    "seeding": "Seeding",
    "leeching": "Leeching",
    "uploads": "My uploads",
    "hnr": "Hit-and-runs",
}
# The hit-and-run section lists what staff or the member may act on, and what was forgiven.
HNR_SECTION_STATES = (
    HitAndRunState.PENDING,
    HitAndRunState.HIT_AND_RUN,
    HitAndRunState.FORGIVEN,
)


def member_current_torrents(member: Member) -> tuple[set[int], set[int]]:
    """``(seeding, leeching)``: ids of the torrents the member has a seeding, and a leeching,
    peer in now, as this process's peer store sees them (``MemoryPeerStore.member_torrents``)."""
    from tracker import announce_runtime  # the runtime imports services: not at module load

    return announce_runtime.peer_store().member_torrents(member.pk)


def member_history(*, member: Member, section: str) -> QuerySet[Torrent]:
    """One section of ``member``'s history as torrents (newest first), each annotated with
    the member's figures on it: ``my_uploaded``, ``my_downloaded`` (bytes), ``my_seed_seconds``,
    ``my_completed_at`` (all ``None`` without a history row), ``hnr_id`` and ``hnr_state``
    (``None`` when the snatch is not tracked yet).

    Sections (``HISTORY_SECTIONS``): ``snatched`` (completed downloads), ``seeding`` and
    ``leeching`` (current peers, :func:`member_current_torrents`), ``uploads`` (every upload,
    pending and rejected too, with ``moderation_reason``), ``hnr`` (snatches pending,
    hit-and-run or forgiven). Deleted torrents are left out, as ``torrent_visible`` leaves
    them out. One query per page, whatever the section.

    Raises:
        ValueError: an unknown ``section``.
    """
    if section not in HISTORY_SECTIONS:
        raise ValueError(f"unknown history section {section!r}")
    qs = (
        Torrent.objects.annotate(
            mine=FilteredRelation("history", condition=Q(history__member=member))
        )
        .annotate(
            my_uploaded=F("mine__uploaded"),
            my_downloaded=F("mine__downloaded"),
            my_seed_seconds=F("mine__seed_seconds"),
            my_completed_at=F("mine__completed_at"),
            hnr_id=F("mine__hit_and_run__id"),
            hnr_state=F("mine__hit_and_run__state"),
        )
        .select_related("category")
        .exclude(status=TorrentStatus.DELETED)
    )
    if section == "uploads":
        return qs.filter(uploader=member).order_by("-created_at", "-id")
    if section == "snatched":
        qs = qs.filter(my_completed_at__isnull=False)
    elif section == "hnr":
        qs = qs.filter(hnr_state__in=HNR_SECTION_STATES)
    else:
        seeding, leeching = member_current_torrents(member)
        qs = qs.filter(id__in=seeding if section == "seeding" else leeching)
    return qs.order_by(F("my_completed_at").desc(nulls_last=True), "-id")
