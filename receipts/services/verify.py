"""Verification service: claim queued receipts, batch-verify their signatures, credit both
members in the reputation ledger.

One run is one transaction:

1. claim up to ``PBTS_VERIFY_BATCH_SIZE`` receipts (messages): queued singly-signed receipts
   and queued aggregates with their receipts, locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
   so concurrent workers take disjoint batches;
2. build one :class:`~receipts.bls.SignedItem` per single signature and one per aggregate, run
   randomized batch verification and bisect a failing batch
   (:func:`receipts.bls.find_invalid`): a bad signature is refused without holding back the
   good ones, and invalid signatures cannot cancel out (hole 8);
3. credit the valid receipts: ``Ledger.verified_uploaded += piece_length`` for the uploader
   and ``Ledger.verified_downloaded += piece_length`` for the downloader, never the reverse
   (the reporter gets no download credit and the downloader is debited, hole 9); mark the
   receipts ``verified`` with ``is_credited`` set and update the reports' counters (the
   chain app finds the changed ledgers by comparing them with what it pushed).

All of step 3 commits with the status change, so a run killed at any point leaves every
receipt either queued and uncredited or verified and credited: a re-run credits each receipt
exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from receipts import format as receipt_format
from receipts import rules
from receipts.bls import SignedItem, find_invalid
from receipts.models import AggregateSignature, Receipt, Report, ReportStatus, Status
from receipts.site import bls_backend
from reputation.services import ledger_credit_verified

_CLAIM_FIELDS = (
    "id",
    "report_id",
    "aggregate_id",
    "position",
    "data",
    "signature",
    "uploader_id",
    "downloader_id",
    "piece_length",
    "status",
)


@dataclass(frozen=True)
class VerifyOutcome:
    """What one run did: receipts claimed, verified and refused, and bytes credited (each
    credited byte counts once, as upload for the uploader and download for the downloader)."""

    claimed: int = 0
    verified: int = 0
    refused: int = 0
    credited_bytes: int = 0


@dataclass
class _Unit:
    """One signature to check: a single receipt or an aggregate with its receipts."""

    receipts: list[Receipt]
    aggregate: AggregateSignature | None = None

    def item(self) -> SignedItem:
        """The signed item: downloader keys and signed bytes exactly as stored. A row that no
        longer decodes gives an empty item, which every backend rejects."""
        msgs = tuple(bytes(r.data) for r in self.receipts)
        try:
            pks = tuple(receipt_format.Receipt.from_bytes(m).downloader_pk for m in msgs)
        except ValueError:
            return SignedItem(pks=(), msgs=(), sig=b"")
        sig = self.aggregate.signature if self.aggregate else self.receipts[0].signature
        return SignedItem(pks=pks, msgs=msgs, sig=bytes(sig))


def _claim(limit: int) -> list[_Unit]:
    """Lock up to ``limit`` queued messages: singles first, then whole aggregates (at least
    one aggregate when there is room for nothing else, so a large one is never starved)."""
    singles = list(
        Receipt.objects.select_for_update(skip_locked=True)
        .filter(status=Status.QUEUED, aggregate__isnull=True)
        .only(*_CLAIM_FIELDS)
        .order_by("id")[:limit]
    )
    units = [_Unit(receipts=[r]) for r in singles]
    room = limit - len(singles)
    if room <= 0:
        return units
    candidates = list(
        AggregateSignature.objects.select_for_update(skip_locked=True)
        .filter(status=Status.QUEUED)
        .order_by("id")[:room]
    )
    taken: list[AggregateSignature] = []
    for aggregate in candidates:
        if aggregate.size > room and (taken or units):
            break
        taken.append(aggregate)
        room -= aggregate.size
        if room <= 0:
            break
    if not taken:
        return units
    members: dict[int, list[Receipt]] = defaultdict(list)
    rows = (
        Receipt.objects.select_for_update()
        .filter(aggregate__in=taken, status=Status.QUEUED)
        .only(*_CLAIM_FIELDS)
        .order_by("aggregate_id", "position")
    )
    for receipt in rows:
        members[receipt.aggregate_id].append(receipt)
    empty = [a.pk for a in taken if not members[a.pk]]
    if empty:  # cannot happen through the services; never let such a row block the queue
        AggregateSignature.objects.filter(pk__in=empty).update(
            status=Status.REFUSED, reason=rules.GROUP_EMPTY
        )
    units.extend(_Unit(receipts=members[a.pk], aggregate=a) for a in taken if members[a.pk])
    return units


def _record(units: list[_Unit], bad: set[int]) -> VerifyOutcome:
    """Step 3: statuses, credit, report counters and chain marks, in the caller's
    transaction."""
    now = timezone.now()
    good = [r for i, u in enumerate(units) if i not in bad for r in u.receipts]
    refused_single = [u.receipts[0].pk for i, u in enumerate(units) if i in bad and not u.aggregate]
    refused_groups = [u for i, u in enumerate(units) if i in bad and u.aggregate]
    Receipt.objects.filter(pk__in=[r.pk for r in good]).update(
        status=Status.VERIFIED, is_credited=True, verified_at=now
    )
    Receipt.objects.filter(pk__in=refused_single).update(
        status=Status.REFUSED, reason=rules.BAD_SIGNATURE
    )
    Receipt.objects.filter(aggregate__in=[u.aggregate for u in refused_groups]).update(
        status=Status.REFUSED, reason=rules.GROUP_BAD_SIGNATURE
    )
    AggregateSignature.objects.filter(
        pk__in=[u.aggregate.pk for i, u in enumerate(units) if u.aggregate and i not in bad]
    ).update(status=Status.VERIFIED)
    AggregateSignature.objects.filter(pk__in=[u.aggregate.pk for u in refused_groups]).update(
        status=Status.REFUSED, reason=rules.GROUP_BAD_SIGNATURE
    )
    _credit(good)
    _count(units, bad)
    return VerifyOutcome(
        claimed=sum(len(u.receipts) for u in units),
        verified=len(good),
        refused=sum(len(units[i].receipts) for i in bad),
        credited_bytes=sum(r.piece_length for r in good),
    )


def _credit(good: list[Receipt]) -> None:
    """Add verified upload to uploaders and verified download to downloaders (bytes), through
    the ledger's owner (``reputation.services``), in this run's transaction."""
    up: dict[int, int] = defaultdict(int)
    down: dict[int, int] = defaultdict(int)
    for receipt in good:
        up[receipt.uploader_id] += receipt.piece_length
        down[receipt.downloader_id] += receipt.piece_length
    ledger_credit_verified(uploaded=up, downloaded=down)


def _count(units: list[_Unit], bad: set[int]) -> None:
    """Move each report's queued receipts to verified or refused; a report with none left
    queued is done."""
    verified: dict[int, int] = defaultdict(int)
    refused: dict[int, int] = defaultdict(int)
    credited: dict[int, int] = defaultdict(int)
    for i, unit in enumerate(units):
        for receipt in unit.receipts:
            if i in bad:
                refused[receipt.report_id] += 1
            else:
                verified[receipt.report_id] += 1
                credited[receipt.report_id] += receipt.piece_length
    for report_id in sorted(set(verified) | set(refused)):
        settled = verified[report_id] + refused[report_id]
        Report.objects.filter(pk=report_id).update(
            verified=F("verified") + verified[report_id],
            refused=F("refused") + refused[report_id],
            queued=F("queued") - settled,
            credited_bytes=F("credited_bytes") + credited[report_id],
            status=Case(When(queued=settled, then=Value(ReportStatus.DONE)), default=F("status")),
            updated_at=timezone.now(),
        )


def receipt_batch_verify(*, limit: int | None = None) -> VerifyOutcome:
    """Verify one batch of queued receipts and credit the valid ones (see the module doc).

    Args:
        limit: most receipts (messages) to claim; ``PBTS_VERIFY_BATCH_SIZE`` by default.

    Returns:
        What the run did; ``claimed == 0`` when nothing was queued (or all of it was locked by
        other workers).

    Raises:
        django.db.DatabaseError: the transaction failed and nothing was written; the receipts
            stay queued for the next run.
    """
    limit = limit or settings.PBTS_VERIFY_BATCH_SIZE
    backend = bls_backend()
    with transaction.atomic():
        units = _claim(limit)
        if not units:
            return VerifyOutcome()
        bad = set(find_invalid(backend, [u.item() for u in units]))
        return _record(units, bad)
