"""Moderation reads: the upload queue, reports, warnings, notes, the invite tree and the site
statistics. Pages, the API and admin share them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from core.errors import NotFound
from moderation.models import ClassLock, MemberWarning, Report, ReportStatus, StaffNote
from reputation.models import Ledger
from tracker.models import Member, Torrent, TorrentStatus

# Invite tree bounds: inviter chain length, invitee levels, rows per level.
INVITER_CHAIN_MAX = 50
INVITEE_DEPTH = 3
INVITEES_PER_LEVEL_MAX = 500
STATS_CACHE_KEY = "moderation:site-stats:v1"


def upload_queue() -> QuerySet[Torrent]:
    """Pending torrents, oldest first (the moderator queue), without the metainfo blob."""
    return (
        Torrent.objects.filter(status=TorrentStatus.PENDING)
        .select_related("category", "uploader")
        .defer("metainfo", "description", "description_html")
        .order_by("created_at", "id")
    )


def report_list(*, status: str = "") -> QuerySet[Report]:
    """Reports, oldest first; ``status`` one ``ReportStatus`` value, ``"active"`` (open and
    claimed) or ``""`` (all); an unknown value lists the active ones."""
    qs = Report.objects.select_related("reporter", "torrent", "member", "claimed_by").order_by(
        "created_at", "id"
    )
    if status == "":
        return qs
    if status in ReportStatus.values:
        return qs.filter(status=status)
    return qs.filter(status__in=[ReportStatus.OPEN, ReportStatus.CLAIMED])


def report_get(*, pk: int) -> Report:
    """The report ``pk`` with its people and target.

    Raises:
        NotFound: no such report.
    """
    report = (
        Report.objects.select_related("reporter", "torrent", "member", "claimed_by", "resolved_by")
        .filter(pk=pk)
        .first()
    )
    if report is None:
        raise NotFound("No such report.")
    return report


def active_warnings_q(now: Any = None) -> Q:
    """Warnings in force at ``now``: not revoked and not yet expired."""
    return Q(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


def member_warnings(*, member: Member, active_only: bool = True) -> QuerySet[MemberWarning]:
    """A member's warnings, newest first (only those in force unless ``active_only`` is
    false)."""
    qs = MemberWarning.objects.filter(member=member).select_related("issued_by", "revoked_by")
    return qs.filter(active_warnings_q()) if active_only else qs


def warning_state(warning: MemberWarning, now: datetime | None = None) -> str:
    """``revoked``, ``expired`` or ``active`` (computed from the clock)."""
    if warning.revoked_at is not None:
        return "revoked"
    return "expired" if warning.expires_at <= (now or timezone.now()) else "active"


def member_notes(*, member: Member, viewer: Member) -> QuerySet[StaffNote]:
    """Staff notes about ``member`` that ``viewer`` may read: none unless the viewer is staff
    in good standing and not the member themself."""
    if viewer.is_banned or not viewer.is_moderator or viewer.pk == member.pk:
        return StaffNote.objects.none()
    return StaffNote.objects.filter(member=member).select_related("author")


def class_lock(member: Member) -> ClassLock | None:
    """The member's class lock (the class rules leave them alone), or ``None``."""
    return ClassLock.objects.select_related("locked_by").filter(member=member).first()


@dataclass(frozen=True, slots=True)
class InviteNode:
    """One invitee in the tree: the member, their depth (1 = invited by the root) and how
    many they invited; ``children`` are filled down to :data:`INVITEE_DEPTH`."""

    member: Member
    depth: int
    invitee_count: int
    children: list[InviteNode]


def inviter_chain(member: Member) -> list[Member]:
    """Who invited ``member``, then who invited them, ... up to :data:`INVITER_CHAIN_MAX`
    steps (nearest first; stops at a loop)."""
    chain: list[Member] = []
    seen = {member.pk}
    current = member.invited_by_id
    while current is not None and current not in seen and len(chain) < INVITER_CHAIN_MAX:
        seen.add(current)
        inviter = Member.objects.only("pk", "username", "invited_by", "is_banned").get(pk=current)
        chain.append(inviter)
        current = inviter.invited_by_id
    return chain


def direct_invitees(member: Member) -> QuerySet[Member]:
    """Members ``member`` invited, by join date, with how many each invited."""
    return (
        Member.objects.filter(invited_by=member)
        .annotate(invitee_count=Count("invitees"))
        .only("pk", "username", "date_joined", "is_banned", "member_class", "invited_by")
        .order_by("date_joined", "pk")
    )


def invite_subtrees(roots: list[Member], *, depth: int = INVITEE_DEPTH) -> list[InviteNode]:
    """The invitees of ``roots`` (one page of direct invitees), each with their own invitees
    level by level, ``depth`` levels in all; each deeper level reads at most
    :data:`INVITEES_PER_LEVEL_MAX` members (one query a level)."""
    nodes = [InviteNode(m, 1, getattr(m, "invitee_count", 0), []) for m in roots]
    level = nodes
    for d in range(2, depth + 1):
        parents = {node.member.pk: node for node in level if node.invitee_count}
        if not parents:
            break
        rows = list(
            Member.objects.filter(invited_by__in=list(parents))
            .annotate(invitee_count=Count("invitees"))
            .only("pk", "username", "date_joined", "is_banned", "member_class", "invited_by")
            .order_by("date_joined", "pk")[:INVITEES_PER_LEVEL_MAX]
        )
        level = []
        for row in rows:
            node = InviteNode(row, d, row.invitee_count, [])
            parents[row.invited_by_id].children.append(node)
            level.append(node)
    return nodes


@dataclass(frozen=True, slots=True)
class SiteStats:
    """The statistics page's figures; traffic in bytes."""

    members_total: int
    members_active: int
    members_banned: int
    torrents_total: int
    torrents_approved: int
    torrents_pending: int
    peers: int
    seeders: int
    leechers: int
    uploaded: int
    downloaded: int
    verified_uploaded: int
    verified_downloaded: int
    computed_at: str

    @property
    def computed(self) -> datetime:
        """When the figures were counted."""
        return datetime.fromisoformat(self.computed_at)


def site_stats_compute() -> SiteStats:
    """Count the figures now (a handful of aggregate queries). Torrents count every state but
    deleted; peers are the approved torrents' seeders and leechers as last written by the
    statistics flush; active members logged in within ``PBTS_STATS_ACTIVE_DAYS`` days."""
    since = timezone.now() - timedelta(days=settings.PBTS_STATS_ACTIVE_DAYS)
    members = Member.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(last_login__gte=since, is_banned=False)),
        banned=Count("pk", filter=Q(is_banned=True)),
    )
    torrents = Torrent.objects.exclude(status=TorrentStatus.DELETED).aggregate(
        total=Count("pk"),
        approved=Count("pk", filter=Q(status=TorrentStatus.APPROVED)),
        pending=Count("pk", filter=Q(status=TorrentStatus.PENDING)),
        seeders=Sum("seeders", filter=Q(status=TorrentStatus.APPROVED)),
        leechers=Sum("leechers", filter=Q(status=TorrentStatus.APPROVED)),
    )
    traffic = Ledger.objects.aggregate(
        up=Sum("uploaded"),
        down=Sum("downloaded"),
        vup=Sum("verified_uploaded"),
        vdown=Sum("verified_downloaded"),
    )
    seeders, leechers = torrents["seeders"] or 0, torrents["leechers"] or 0
    return SiteStats(
        members_total=members["total"],
        members_active=members["active"],
        members_banned=members["banned"],
        torrents_total=torrents["total"],
        torrents_approved=torrents["approved"],
        torrents_pending=torrents["pending"],
        peers=seeders + leechers,
        seeders=seeders,
        leechers=leechers,
        uploaded=int(traffic["up"] or 0),
        downloaded=int(traffic["down"] or 0),
        verified_uploaded=int(traffic["vup"] or 0),
        verified_downloaded=int(traffic["vdown"] or 0),
        computed_at=timezone.now().isoformat(),
    )


def site_stats() -> SiteStats:
    """The figures, cached for ``PBTS_STATS_CACHE_SECONDS`` seconds (shared cache)."""
    cached = cache.get(STATS_CACHE_KEY)
    if isinstance(cached, dict):
        try:
            return SiteStats(**cached)
        except TypeError:
            pass
    stats = site_stats_compute()
    cache.set(STATS_CACHE_KEY, asdict(stats), timeout=settings.PBTS_STATS_CACHE_SECONDS)
    return stats
