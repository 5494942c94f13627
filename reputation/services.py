"""The ledger's only writer: announced credit (the statistics flush), verified credit (receipt
verification), imported credit (a chain migration), upload bought with bonus points, and the
row every member starts with; and the bonus point ledger's only writer (earning, spending,
staff adjustments: docs/bonus.md).

Every figure is bytes, except ``seeding_seconds`` (seconds). Credits only ever add (saturating
at the largest BIGINT); nothing here takes bytes away. The credit functions run inside the
caller's transaction, because each is one step of a larger atomic change that the caller owns
(a statistics batch with its history and torrent counters; a verification run with its receipt
statuses; a migration's record): a crash leaves both sides applied or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.audit import audit_record
from core.bulksql import saturating_add, values_cte
from core.errors import InvalidInput, NotPermitted
from reputation.models import BonusAccount, BonusKind, BonusTransaction, Ledger

LEDGER = Ledger._meta.db_table
BONUS = BonusAccount._meta.db_table
MILLI = 1000  # millipoints per point


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


def ledger_credit_bonus(*, member_id: int, uploaded: int) -> None:
    """Add upload bought with bonus points (bytes) to ``Ledger.bonus_uploaded``: it counts for
    the site's ratio rule (``reputation.policy.site_figures``) and nothing else; the
    announced, verified and imported figures (and so the chain's) are untouched. Runs in the
    caller's transaction (``tracker.services.bonus.bonus_store_buy``, with the spend).

    Raises:
        InvalidInput: ``uploaded`` is not positive.
    """
    if uploaded <= 0:
        raise InvalidInput("Bonus upload must be positive.", field="uploaded")
    ledger_open(member_id=member_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {LEDGER} SET bonus_uploaded = {saturating_add('bonus_uploaded', '%s')},"
            " updated_at = %s WHERE member_id = %s",
            [uploaded, uploaded, timezone.now(), member_id],
        )


def bonus_credit_earned(
    *, amounts: Mapping[int, int], reference: str, now: datetime | None = None
) -> int:
    """Credit seeding points: ``{member_id: millipoints}`` (positive; zeros are skipped), one
    upsert of the balances and one insert of ``earn`` transactions. Runs in the caller's
    transaction (``tracker.services.bonus.bonus_award_seeding``, with the per-torrent
    record of what was awarded, so a re-run awards nothing twice). Returns the rows credited.
    """
    rows = sorted((m, amount) for m, amount in amounts.items() if amount > 0)
    if not rows:
        return 0
    now = now or timezone.now()
    with_v, params = values_cte(("member_id", "amount"), rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{with_v} INSERT INTO {BONUS} (member_id, balance, updated_at)"
            " SELECT v.member_id, v.amount, %s FROM v WHERE true"
            " ON CONFLICT (member_id) DO UPDATE SET"
            f" balance = {saturating_add(BONUS + '.balance', 'excluded.balance')},"
            " updated_at = excluded.updated_at RETURNING member_id, balance",
            [*params, now],
        )
        balances = dict(cursor.fetchall())
    BonusTransaction.objects.bulk_create(
        BonusTransaction(
            member_id=member_id,
            amount=amount,
            kind=BonusKind.EARN,
            reference=reference,
            balance_after=balances[member_id],
            created_at=now,
        )
        for member_id, amount in rows
        if member_id in balances
    )
    return len(balances)


def bonus_spend(
    *, member_id: int, cost: int, reference: str, now: datetime | None = None
) -> BonusTransaction:
    """Take ``cost`` millipoints from the member's balance, or refuse: one conditional UPDATE
    (``... WHERE balance >= cost``), so concurrent spends can never overdraw (the row lock
    serialises them; the second sees the first's balance) and the CHECK constraint backs it.
    Runs in the caller's transaction (the store service, which applies what was bought in the
    same transaction and keeps the row locked until it commits).

    Raises:
        InvalidInput (field ``item``): not enough points.
    """
    if cost <= 0:
        raise InvalidInput("The cost must be positive.", field="item")
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {BONUS} SET balance = balance - %s, updated_at = %s"
            " WHERE member_id = %s AND balance >= %s RETURNING balance",
            [cost, now, member_id, cost],
        )
        row = cursor.fetchone()
    if row is None:
        have = BonusAccount.objects.filter(member_id=member_id).values_list("balance", flat=True)
        raise InvalidInput(
            f"Not enough points: this costs {cost / MILLI:,.3f}, you have "
            f"{(have.first() or 0) / MILLI:,.3f}.",
            field="item",
        )
    return BonusTransaction.objects.create(
        member_id=member_id,
        amount=-cost,
        kind=BonusKind.SPEND,
        reference=reference,
        balance_after=row[0],
        created_at=now,
    )


def bonus_adjust(*, actor: Any, member: Any, amount: int, reason: str) -> BonusTransaction:
    """A staff adjustment of a member's balance by ``amount`` millipoints (positive or
    negative), audited (``bonus_adjust`` with the old and new balance and the reason). Owns
    its transaction; the account row is locked (SELECT ... FOR UPDATE).

    Raises:
        NotPermitted: the actor is not a moderator in good standing, or adjusts their own
            balance (nobody grants themselves points).
        InvalidInput: ``amount`` is 0 (field ``amount``), no reason (field ``reason``), or the
            balance would go below zero (field ``amount``).
    """
    if not (getattr(actor, "is_moderator", False) and not getattr(actor, "is_banned", True)):
        raise NotPermitted("Only moderators in good standing adjust bonus points.")
    if actor.pk == member.pk:
        raise NotPermitted("Nobody adjusts their own bonus points.")
    if amount == 0:
        raise InvalidInput("The adjustment cannot be zero.", field="amount")
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Give a reason.", field="reason")
    with transaction.atomic():
        BonusAccount.objects.get_or_create(member_id=member.pk)
        account = BonusAccount.objects.select_for_update().get(member_id=member.pk)
        old = account.balance
        new = old + amount
        if new < 0:
            raise InvalidInput(
                f"The balance would go below zero (it is {old / MILLI:,.3f}).", field="amount"
            )
        account.balance = new
        account.save(update_fields=["balance", "updated_at"])
        tx = BonusTransaction.objects.create(
            member_id=member.pk,
            amount=amount,
            kind=BonusKind.ADJUST,
            reference=reason[:255],
            balance_after=new,
            actor=actor,
        )
        audit_record(
            actor=actor,
            action="bonus_adjust",
            target=member,
            old={"bonus_balance": old},
            new={"bonus_balance": new},
            reason=reason,
        )
    return tx
