"""The ledger's only writer: announced credit (the statistics flush), verified credit (receipt
verification), imported credit (a chain migration), and the row every member starts with.

Every figure is bytes, except ``seeding_seconds`` (seconds). Credits only ever add (saturating
at the largest BIGINT); nothing here takes bytes away. The credit functions run inside the
caller's transaction, because each is one step of a larger atomic change that the caller owns
(a statistics batch with its history and torrent counters; a verification run with its receipt
statuses; a migration's record): a crash leaves both sides applied or neither.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connection
from django.db.models import F
from django.utils import timezone

from core.bulksql import saturating_add, values_cte
from reputation.models import Ledger

LEDGER = Ledger._meta.db_table


def ledger_open(*, member_id: int) -> Ledger:
    """The member's ledger row, created empty if missing (idempotent)."""
    ledger, _ = Ledger.objects.get_or_create(member_id=member_id)
    return ledger


def ledger_credit_announced(*, totals: Mapping[int, tuple[int, int, int]]) -> None:
    """Add announced figures in one statement: ``{member_id: (uploaded, downloaded,
    seeding_seconds)}`` in bytes and seconds, the deltas of one statistics batch (never a
    client's totals). Members without a ledger row (deleted since the announce) are skipped.
    Runs in the caller's transaction (``tracker.services.stats.stats_flush``)."""
    rows = [(member_id, up, down, seed) for member_id, (up, down, seed) in totals.items()]
    if not rows:
        return
    with_v, params = values_cte(("member_id", "up", "down", "seed"), rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_v} UPDATE {LEDGER} SET"
            f" uploaded = {saturating_add(LEDGER + '.uploaded', 'v.up')},"
            f" downloaded = {saturating_add(LEDGER + '.downloaded', 'v.down')},"
            f" seeding_seconds = {saturating_add(LEDGER + '.seeding_seconds', 'v.seed')},"
            f" updated_at = %s FROM v WHERE {LEDGER}.member_id = v.member_id",
            [*params, timezone.now()],
        )


def ledger_flag_clamped(*, member_ids: set[int] | frozenset[int]) -> None:
    """Count one more clamped statistics batch for each member (an announce claimed more bytes
    than ``PBTS_MAX_CREDIT_RATE`` allows since the peer's last announce and was cut to it), and
    stamp the time: the admin's ledger list filters on it. Runs in the caller's transaction
    (the statistics flush)."""
    Ledger.objects.filter(member_id__in=member_ids).update(
        clamped_announces=F("clamped_announces") + 1, clamped_at=timezone.now()
    )


def ledger_credit_verified(*, uploaded: Mapping[int, int], downloaded: Mapping[int, int]) -> None:
    """Add receipt-backed figures (bytes): ``uploaded[m]`` to member m's verified upload and
    ``downloaded[m]`` to their verified download, in one statement, creating missing rows.

    Members are written in id order by one UPDATE (a fixed lock order between concurrent
    verification runs). Runs in the caller's transaction
    (``receipts.services.verify.receipt_batch_verify``). The chain app finds the changed
    members by comparing the ledger with what it pushed.
    """
    members = sorted(set(uploaded) | set(downloaded))
    if not members:
        return
    Ledger.objects.bulk_create([Ledger(member_id=m) for m in members], ignore_conflicts=True)
    rows = [(m, uploaded.get(m, 0), downloaded.get(m, 0)) for m in members]
    with_v, params = values_cte(("member_id", "up", "down"), rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_v} UPDATE {LEDGER} SET"
            f" verified_uploaded = {saturating_add(LEDGER + '.verified_uploaded', 'v.up')},"
            f" verified_downloaded = {saturating_add(LEDGER + '.verified_downloaded', 'v.down')},"
            f" updated_at = %s FROM v WHERE {LEDGER}.member_id = v.member_id",
            [*params, timezone.now()],
        )


def ledger_credit_imported(*, member_id: int, uploaded: int, downloaded: int) -> None:
    """Record what a chain migration brought from a predecessor site (bytes, the figures its
    contract emitted). A member imports once; the values are absolute, so a re-run of the same
    finalization writes the same figures. Runs in the caller's transaction
    (``chain.services.migration``)."""
    ledger_open(member_id=member_id)
    Ledger.objects.filter(member_id=member_id).update(
        imported_uploaded=uploaded, imported_downloaded=downloaded, updated_at=timezone.now()
    )
