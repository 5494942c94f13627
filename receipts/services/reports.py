"""Report service: check every receipt of an uploader's report and store the report at once.

Each receipt is either ``queued`` (for the verify task, ``receipts.services.verify``) or
refused with a reason; nothing here verifies a signature (that is batched) and nothing is
credited. The checks, in order (the first failure is the reason; texts in
``receipts.rules``):

1. base64, lengths and decoding (``receipts.format.Receipt.from_bytes``);
2. realm: this site's (hole 10);
3. uploader key: the reporter's active key (hole 5);
4. downloader key: another member's active key, account in good standing (hole 5);
5. torrent: an approved torrent with that info_hash;
6. piece index below the piece count, piece length equal to that piece's (hole 6);
7. time bucket inside the window, not beyond the allowed skew in the future (hole 10);
8. the downloader, and the uploader, were seen in that torrent's swarm around that time, the
   downloader leeching (``left > 0``);
9. one credit per piece and downloader: no other live receipt names the same downloader,
   torrent and piece index, whatever its time bucket and uploader (a partial unique index
   decides between concurrent reports);
10. the rate bound: the live bytes of the uploader and of the downloader in that time bucket
    stay within ``PBTS_MAX_CREDIT_RATE`` x 60 s;
11. the receipt id is new: not twice in the report, not queued or verified before, and not
    inserted by a concurrent report (a partial unique index decides; hole 7).

Aggregates: an aggregate signature covers all its receipts and cannot be checked over a
subset, so if any of them is refused (or the signature is not 96 bytes of base64) the whole
group is refused, each receipt with its own reason or the group's.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from core.errors import InvalidInput
from receipts import format as receipt_format
from receipts import rules
from receipts.models import (
    SIGNATURE_BYTES,
    AggregateSignature,
    BLSKey,
    Receipt,
    Report,
    ReportStatus,
    Status,
)
from receipts.selectors import (
    AggregateDetail,
    ReportDetail,
    active_keys_by_public_key,
    member_active_key,
    torrent_v1_size,
)
from receipts.site import site_realm
from receipts.tasks import verify_receipts
from tracker.models import Member, Torrent, TorrentHistory, TorrentStatus

INSERT_BATCH = 1000


@dataclass(frozen=True)
class SingleInput:
    """A singly-signed receipt as sent: base64 text of the receipt bytes and of its 96-byte
    signature."""

    receipt: str
    signature: str


@dataclass(frozen=True)
class AggregateInput:
    """Receipts under one aggregate signature: base64 texts of each receipt's bytes and of
    the 96-byte aggregate signature."""

    receipts: Sequence[str]
    signature: str


@dataclass(eq=False)
class _Entry:
    """One receipt of the report while it is checked; ``row`` is the row to insert."""

    row: Receipt
    label: str
    group: int | None
    decoded: receipt_format.Receipt | None = None


@dataclass
class _Group:
    aggregate: AggregateSignature
    entries: list[_Entry] = field(default_factory=list)


def _refuse(entry: _Entry, reason: str) -> None:
    if entry.row.status != Status.REFUSED:
        entry.row.status = Status.REFUSED
        entry.row.reason = reason[:255]


def _decode(entry: _Entry, text: str) -> None:
    """Rule 1: base64 and the receipt format."""
    try:
        data = rules.decode_b64(text, field="receipt")
        decoded = receipt_format.Receipt.from_bytes(data)
    except ValueError as exc:
        reason = str(exc)
        _refuse(
            entry,
            reason if reason.startswith("receipt:") else rules.UNDECODABLE.format(error=reason),
        )
        return
    entry.decoded = decoded
    entry.row.data = data
    entry.row.receipt_id = decoded.receipt_id
    entry.row.piece_index = decoded.piece_index
    entry.row.piece_length = decoded.piece_length
    entry.row.time_bucket = decoded.time_bucket


class _Checker:
    """Rules 2-8 for the decoded entries of one report, with what the database knows loaded
    in a few queries (keys, torrents, swarm history)."""

    def __init__(self, *, reporter: Member, entries: list[_Entry], now: float) -> None:
        decoded = [e.decoded for e in entries if e.decoded is not None]
        self.reporter = reporter
        self.now = now
        self.realm = site_realm()
        self.reporter_key: BLSKey | None = member_active_key(reporter)
        self.keys = active_keys_by_public_key(r.downloader_pk for r in decoded)
        hashes = {r.info_hash.hex() for r in decoded}
        self.torrents = {
            t.info_hash: t
            for t in Torrent.objects.filter(
                info_hash__in=hashes, status=TorrentStatus.APPROVED
            ).only("id", "info_hash", "piece_length", "piece_count", "size")
        }
        member_ids = {k.member_id for k in self.keys.values()} | {reporter.pk}
        torrent_ids = {t.pk for t in self.torrents.values()}
        # (member, torrent) -> spans in the swarm: any presence, and leeching (left > 0), from
        # the first statistics flush that saw the member to the last one (that saw it leech).
        self.seen: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
        self.leeched: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
        if member_ids and torrent_ids:
            rows = TorrentHistory.objects.filter(
                member_id__in=member_ids, torrent_id__in=torrent_ids
            ).values_list("member_id", "torrent_id", "created_at", "updated_at", "leeched_at")
            for member_id, torrent_id, first, last, leeched in rows:
                key = (member_id, torrent_id)
                self.seen[key].append((first.timestamp(), last.timestamp()))
                if leeched is not None:
                    self.leeched[key].append((first.timestamp(), leeched.timestamp()))
        self.v1_sizes: dict[int, int] = {}

    def reason(self, r: receipt_format.Receipt, row: Receipt) -> str | None:
        """The refusal reason for a decoded receipt, or ``None``; fills the row's members and
        torrent as they are resolved."""
        if r.realm != self.realm:
            return rules.OTHER_REALM
        if self.reporter_key is None:
            return rules.NO_REPORTER_KEY
        if r.uploader_pk != bytes(self.reporter_key.public_key):
            return rules.NOT_REPORTER_KEY
        row.uploader_id = self.reporter.pk
        key = self.keys.get(r.downloader_pk)
        if key is None:
            return rules.UNKNOWN_DOWNLOADER
        if key.member_id == self.reporter.pk:
            return rules.SELF_SIGNED
        if key.member.is_banned or not key.member.is_active:
            return rules.DOWNLOADER_NOT_IN_GOOD_STANDING
        row.downloader_id = key.member_id
        torrent = self.torrents.get(r.info_hash.hex())
        if torrent is None:
            return rules.UNKNOWN_TORRENT
        row.torrent_id = torrent.pk
        if torrent.pk not in self.v1_sizes:
            self.v1_sizes[torrent.pk] = torrent_v1_size(torrent)
        try:
            expected = rules.expected_piece_length(
                v1_size=self.v1_sizes[torrent.pk],
                piece_length=torrent.piece_length,
                piece_count=torrent.piece_count,
                index=r.piece_index,
            )
        except ValueError as exc:
            return str(exc)
        if r.piece_length != expected:
            return rules.PIECE_LENGTH.format(
                got=r.piece_length, index=r.piece_index, expected=expected
            )
        bucket_seconds = receipt_format.TIME_BUCKET_SECONDS
        too_far = rules.window_refusal(
            bucket=r.time_bucket,
            now=self.now,
            bucket_seconds=bucket_seconds,
            window_seconds=settings.PBTS_RECEIPT_WINDOW_SECONDS,
            future_buckets=settings.PBTS_RECEIPT_FUTURE_BUCKETS,
        )
        if too_far:
            return too_far
        if not rules.seen_around(
            bucket=r.time_bucket,
            bucket_seconds=bucket_seconds,
            spans=self.seen.get((key.member_id, torrent.pk), ()),
            slack=settings.PBTS_RECEIPT_PRESENCE_SLACK_SECONDS,
        ):
            return rules.NOT_IN_SWARM
        if not rules.seen_around(
            bucket=r.time_bucket,
            bucket_seconds=bucket_seconds,
            spans=self.leeched.get((key.member_id, torrent.pk), ()),
            slack=settings.PBTS_RECEIPT_PRESENCE_SLACK_SECONDS,
        ):
            return rules.DOWNLOADER_NOT_LEECHING
        if not rules.seen_around(
            bucket=r.time_bucket,
            bucket_seconds=bucket_seconds,
            spans=self.seen.get((self.reporter.pk, torrent.pk), ()),
            slack=settings.PBTS_RECEIPT_PRESENCE_SLACK_SECONDS,
        ):
            return rules.UPLOADER_NOT_IN_SWARM
        return None


def _collect(
    report: Report, receipts: Sequence[SingleInput], aggregates: Sequence[AggregateInput]
) -> tuple[list[_Entry], list[_Group]]:
    """Rows for every entry (rule 1 applied) and the aggregate groups."""
    entries: list[_Entry] = []
    for position, item in enumerate(receipts):
        row = Receipt(report=report, position=position)
        entry = _Entry(row=row, label=f"receipts[{position}]", group=None)
        try:
            row.signature = rules.decode_b64(
                item.signature, field="signature", length=SIGNATURE_BYTES
            )
        except ValueError as exc:
            _refuse(entry, str(exc))
        _decode(entry, item.receipt)
        entries.append(entry)
    groups: list[_Group] = []
    for g, item in enumerate(aggregates):
        aggregate = AggregateSignature(
            report=report, position=g, signature=b"", size=len(item.receipts)
        )
        group = _Group(aggregate=aggregate)
        try:
            aggregate.signature = rules.decode_b64(
                item.signature, field="signature", length=SIGNATURE_BYTES
            )
        except ValueError as exc:
            aggregate.status = Status.REFUSED
            aggregate.reason = rules.GROUP_SIGNATURE.format(reason=exc)[:255]
        for position, text in enumerate(item.receipts):
            row = Receipt(report=report, position=position)
            entry = _Entry(row=row, label=f"aggregates[{g}].receipts[{position}]", group=g)
            _decode(entry, text)
            group.entries.append(entry)
            entries.append(entry)
        groups.append(group)
    return entries, groups


def _check(reporter: Member, entries: list[_Entry], now: float) -> None:
    """Rules 2-9 (the database part of rule 9 is the pre-check; the insert decides)."""
    checker = _Checker(reporter=reporter, entries=entries, now=now)
    first_seen: dict[bytes, _Entry] = {}
    for entry in entries:
        if entry.decoded is None:
            continue
        reason = checker.reason(entry.decoded, entry.row)
        if reason is not None:
            _refuse(entry, reason)
        if entry.row.status == Status.REFUSED:
            continue  # a refused entry claims nothing: a later copy may stand
        rid = entry.decoded.receipt_id
        if rid in first_seen:
            _refuse(entry, rules.DUPLICATE_IN_REPORT.format(other=first_seen[rid].label))
        else:
            first_seen[rid] = entry
    live = [e.row.receipt_id for e in entries if e.row.status == Status.QUEUED]
    if live:
        taken = set(
            Receipt.objects.filter(
                receipt_id__in=live, status__in=[Status.QUEUED, Status.VERIFIED]
            ).values_list("receipt_id", flat=True)
        )
        taken = {bytes(rid) for rid in taken}
        for entry in entries:
            if entry.row.status == Status.QUEUED and entry.row.receipt_id in taken:
                _refuse(entry, rules.ALREADY_REPORTED)
    _check_pieces(entries)


def _piece(entry: _Entry) -> tuple[int, int, int]:
    row = entry.row
    return (row.downloader_id, row.torrent_id, row.piece_index)


def _check_pieces(entries: list[_Entry]) -> None:
    """One credit per (downloader, torrent, piece): refuse a second receipt for a piece in
    this report, or one whose piece is already queued or verified for that downloader (the
    partial unique index decides between concurrent reports)."""
    queued = [e for e in entries if e.row.status == Status.QUEUED]
    first: dict[tuple[int, int, int], _Entry] = {}
    for entry in queued:
        key = _piece(entry)
        if key in first:
            _refuse(entry, rules.PIECE_IN_REPORT.format(other=first[key].label))
        else:
            first[key] = entry
    if not first:
        return
    downloaders = {d for d, _, _ in first}
    torrents = {t for _, t, _ in first}
    pieces = {p for _, _, p in first}
    taken = set(
        Receipt.objects.filter(
            downloader_id__in=downloaders,
            torrent_id__in=torrents,
            piece_index__in=pieces,
            status__in=[Status.QUEUED, Status.VERIFIED],
        ).values_list("downloader_id", "torrent_id", "piece_index")
    )
    for key, entry in first.items():
        if key in taken:
            _refuse(entry, rules.PIECE_CREDITED.format(index=key[2]))


def _check_rate(entries: list[_Entry]) -> None:
    """At most ``PBTS_MAX_CREDIT_RATE`` x the bucket length of live bytes per member and time
    bucket, as uploader and as downloader (live: queued or verified; a receipt refused later
    frees its room). The members' rows are locked in id order first, so concurrent reports
    naming the same member count one after the other."""
    queued = [e for e in entries if e.row.status == Status.QUEUED]
    if not queued:
        return
    limit = rules.bucket_credit_limit(
        rate=settings.PBTS_MAX_CREDIT_RATE, bucket_seconds=receipt_format.TIME_BUCKET_SECONDS
    )
    roles = (("uploader", "uploader_id"), ("downloader", "downloader_id"))
    members = sorted({getattr(e.row, column) for e in queued for _, column in roles})
    list(Member.objects.select_for_update().filter(pk__in=members).order_by("pk").values("pk"))
    buckets = {e.row.time_bucket for e in queued}
    used: dict[tuple[str, int, int], int] = defaultdict(int)
    for role, column in roles:
        rows = (
            Receipt.objects.filter(
                **{f"{column}__in": members},
                time_bucket__in=buckets,
                status__in=[Status.QUEUED, Status.VERIFIED],
            )
            .order_by()
            .values_list(column, "time_bucket")
            .annotate(total=Sum("piece_length"))
        )
        for member_id, bucket, total in rows:
            used[(role, member_id, bucket)] = total
    for entry in queued:
        keys = [(role, getattr(entry.row, column), entry.row.time_bucket) for role, column in roles]
        over = next((k for k in keys if used[k] + entry.row.piece_length > limit), None)
        if over is not None:
            _refuse(
                entry,
                rules.RATE.format(
                    limit=limit, role=over[0], seconds=receipt_format.TIME_BUCKET_SECONDS
                ),
            )
            continue
        for key in keys:
            used[key] += entry.row.piece_length


def _refuse_group(group: _Group, culprit: _Entry | None) -> None:
    """Refuse an aggregate and all its receipts: because of ``culprit`` (a refused receipt of
    the group, which keeps its own reason), or of its unusable signature (already set)."""
    aggregate = group.aggregate
    aggregate.status = Status.REFUSED
    if culprit is None:
        reason = aggregate.reason
    else:
        aggregate.reason = f"{culprit.label}: {culprit.row.reason}"[:255]
        reason = rules.GROUP_REFUSED.format(other=culprit.label)
    for entry in group.entries:
        _refuse(entry, reason)


def _settle_groups(groups: list[_Group]) -> None:
    """The aggregate rule: one refused receipt (or an unusable signature) refuses the group."""
    for group in groups:
        culprit = next((e for e in group.entries if e.row.status == Status.REFUSED), None)
        if group.aggregate.status == Status.REFUSED:
            _refuse_group(group, None)
        elif culprit is not None:
            _refuse_group(group, culprit)


def _insert(report: Report, entries: list[_Entry], groups: list[_Group]) -> None:
    """Write aggregates and receipts. Queued rows go in sorted by receipt id (a fixed lock
    order, so two concurrent reports cannot deadlock) with ON CONFLICT DO NOTHING; a row that
    did not go in lost to a concurrent report and is stored refused, and takes its aggregate
    group down with it."""
    AggregateSignature.objects.bulk_create([g.aggregate for g in groups])
    for group in groups:
        for entry in group.entries:
            entry.row.aggregate = group.aggregate
    refused = [e for e in entries if e.row.status == Status.REFUSED]
    queued = sorted(
        (e for e in entries if e.row.status == Status.QUEUED),
        key=lambda e: bytes(e.row.receipt_id),
    )
    Receipt.objects.bulk_create(
        [e.row for e in queued], batch_size=INSERT_BATCH, ignore_conflicts=True
    )
    won = {
        bytes(rid)
        for rid in Receipt.objects.filter(report=report, status=Status.QUEUED).values_list(
            "receipt_id", flat=True
        )
    }
    lost = [e for e in queued if bytes(e.row.receipt_id) not in won]
    for entry in lost:
        _refuse(entry, rules.LOST_RACE)
    for g in sorted({e.group for e in lost if e.group is not None}):
        group, culprit = groups[g], next(e for e in lost if e.group == g)
        _refuse_group(group, culprit)
        group.aggregate.save(update_fields=["status", "reason"])
        Receipt.objects.filter(aggregate=group.aggregate, status=Status.QUEUED).update(
            status=Status.REFUSED, reason=rules.GROUP_REFUSED.format(other=culprit.label)
        )
    Receipt.objects.bulk_create([e.row for e in refused + lost], batch_size=INSERT_BATCH)


def report_submit(
    *,
    reporter: Member,
    receipts: Sequence[SingleInput] = (),
    aggregates: Sequence[AggregateInput] = (),
    now: float | None = None,
) -> ReportDetail:
    """Check and store a report in one transaction; each receipt is queued or refused.

    Args:
        reporter: the uploader sending the report (authenticated by API token).
        receipts: singly-signed receipts (base64 texts).
        aggregates: groups of receipts under one aggregate signature each.
        now: the current Unix time in seconds (tests pass a fixed one).

    Returns:
        The stored report with every receipt's status as decided now (``queued`` or
        ``refused`` with a reason); verification runs after the commit (the verify task is
        enqueued then; with Celery eager it runs at once).

    Raises:
        InvalidInput: the report is empty or holds more than ``PBTS_REPORT_MAX_RECEIPTS``
            receipts (field ``receipts``); nothing is stored.
    """
    total = len(receipts) + sum(len(a.receipts) for a in aggregates)
    limit = settings.PBTS_REPORT_MAX_RECEIPTS
    if total == 0:
        raise InvalidInput("The report holds no receipts.", field="receipts")
    if total > limit:
        raise InvalidInput(
            f"A report holds at most {limit} receipts (singly-signed and aggregated together); "
            f"this one has {total}. Split it into several reports.",
            field="receipts",
        )
    now = time.time() if now is None else now
    with transaction.atomic():
        report = Report.objects.create(reporter=reporter, status=ReportStatus.DONE)
        entries, groups = _collect(report, receipts, aggregates)
        _check(reporter, entries, now)
        _check_rate(entries)
        _settle_groups(groups)
        _insert(report, entries, groups)
        report.received = len(entries)
        report.queued = sum(e.row.status == Status.QUEUED for e in entries)
        report.refused = report.received - report.queued
        report.status = ReportStatus.PENDING if report.queued else ReportStatus.DONE
        report.save(update_fields=["received", "queued", "refused", "status", "updated_at"])
        if report.queued:
            transaction.on_commit(_enqueue_verification, robust=True)
    detail = ReportDetail(report=report, singles=[e.row for e in entries if e.group is None])
    detail.aggregates = [AggregateDetail(g.aggregate, [e.row for e in g.entries]) for g in groups]
    return detail


def _enqueue_verification() -> None:
    """Ask a worker to verify now (beat would within ``PBTS_VERIFY_SECONDS`` anyway); with
    Celery eager (the embedded default) this verifies in this process."""
    verify_receipts.delay()
