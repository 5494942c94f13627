"""Read-side queries of the receipts app, shared by services, the API, pages and admin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import QuerySet
from fastbencode import bdecode

from receipts.models import AggregateSignature, BLSKey, Receipt, Report
from tracker.models import Member, Torrent

V1_SIZE_CACHE = "receipts:v1size:{pk}:{info_hash}"


def member_active_key(member: Member) -> BLSKey | None:
    """The member's active (unrevoked) key, or ``None``."""
    return BLSKey.objects.filter(member=member, revoked_at__isnull=True).first()


def member_keys(member: Member) -> QuerySet[BLSKey]:
    """All of the member's keys, newest first (the active one and revoked history)."""
    return BLSKey.objects.filter(member=member).order_by("-created_at", "-id")


def active_keys_by_public_key(public_keys: Iterable[bytes]) -> dict[bytes, BLSKey]:
    """``{public_key: key}`` for the given keys that are active, with their members selected."""
    wanted = {bytes(pk) for pk in public_keys}
    if not wanted:
        return {}
    rows = BLSKey.objects.select_related("member").filter(
        public_key__in=list(wanted), revoked_at__isnull=True
    )
    return {bytes(key.public_key): key for key in rows}


def torrent_v1_size(torrent: Torrent) -> int:
    """The byte total a torrent's v1 pieces cover: the file lengths plus any BEP 47 padding
    files (``Torrent.size`` leaves padding out). Read once from the stored metainfo, then
    from the cache (a torrent's info dictionary never changes)."""
    key = V1_SIZE_CACHE.format(pk=torrent.pk, info_hash=torrent.info_hash)
    size = cache.get(key)
    if size is None:
        metainfo = Torrent.objects.filter(pk=torrent.pk).values_list("metainfo", flat=True)[0]
        info = bdecode(bytes(metainfo))[b"info"]
        if b"length" in info:
            size = info[b"length"]
        else:
            size = sum(entry[b"length"] for entry in info[b"files"])
        cache.set(key, size, timeout=None)
    return size


@dataclass
class AggregateDetail:
    """An aggregate signature of a report with its receipts, in order."""

    aggregate: AggregateSignature
    receipts: list[Receipt] = field(default_factory=list)


@dataclass
class ReportDetail:
    """A report with its receipts, as the API shows it: singly-signed receipts in the order
    sent, then each aggregate with its receipts in order."""

    report: Report
    singles: list[Receipt] = field(default_factory=list)
    aggregates: list[AggregateDetail] = field(default_factory=list)


def report_visible(*, viewer: Member) -> QuerySet[Report]:
    """Reports ``viewer`` may see: their own; staff see all."""
    qs = Report.objects.all()
    return qs if viewer.is_moderator else qs.filter(reporter=viewer)


def report_detail(report: Report) -> ReportDetail:
    """Load a report's receipts and aggregates (three queries)."""
    fields = (
        "id",
        "report_id",
        "aggregate_id",
        "position",
        "receipt_id",
        "status",
        "reason",
        "piece_index",
        "piece_length",
        "time_bucket",
        "torrent__info_hash",
        "verified_at",
    )
    receipts = list(
        Receipt.objects.filter(report=report)
        .select_related("torrent")
        .only(*fields)
        .order_by("aggregate_id", "position")
    )
    groups = list(AggregateSignature.objects.filter(report=report).order_by("position"))
    by_group: dict[int, list[Receipt]] = {g.pk: [] for g in groups}
    detail = ReportDetail(report=report)
    for receipt in receipts:
        if receipt.aggregate_id is None:
            detail.singles.append(receipt)
        else:
            by_group[receipt.aggregate_id].append(receipt)
    detail.aggregates = [AggregateDetail(g, by_group[g.pk]) for g in groups]
    return detail
