"""The bonus point ledger (reputation): the earning formula, spending that never overdraws
(also under real concurrent connections), the CHECK constraint, staff adjustments."""

from __future__ import annotations

import math
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import InvalidInput, NotPermitted
from core.models import AuditLog
from reputation.models import BonusAccount, BonusKind, BonusTransaction
from reputation.policy import GIB, BonusFormula, bonus_points_per_hour
from reputation.services import MILLI, bonus_adjust, bonus_credit_earned, bonus_spend
from tracker.tests.factories import MemberFactory

DEFAULT = BonusFormula()


def balance(member) -> int:
    return BonusAccount.objects.get(member=member).balance


def test_formula_worked_example_of_the_docs():
    # 8 GiB, 2 seeders, 90 days: 1 x (1 + 0.5 log2 9) x (1 + 1/2) x (1 + 0.5 x 90/180).
    rate = bonus_points_per_hour(size=8 * GIB, seeders=2, age_days=90, formula=DEFAULT)
    assert rate == pytest.approx((1 + 0.5 * math.log2(9)) * 1.5 * 1.25)
    assert round(rate, 2) == 4.85


def test_formula_rewards_size_rarity_and_age_and_caps_age():
    def rate(**kw):
        args = {"size": GIB, "seeders": 5, "age_days": 10} | kw
        return bonus_points_per_hour(formula=DEFAULT, **args)

    assert rate(size=100 * GIB) > rate() > rate(size=0)
    assert rate(seeders=1) > rate() > rate(seeders=50)
    assert rate(seeders=0) == rate(seeders=1)  # the seeder counts itself
    assert rate(age_days=100) > rate()
    assert rate(age_days=180) == rate(age_days=10_000)  # full value at age_full_days
    assert rate(size=0, seeders=10**9, age_days=0) == pytest.approx(1.0)  # the base
    custom = BonusFormula(base=2, size_factor=0, rarity_factor=0, age_factor=0)
    assert bonus_points_per_hour(size=GIB, seeders=1, age_days=1, formula=custom) == 2


@pytest.mark.django_db
def test_earned_points_are_credited_with_a_transaction_each():
    a, b = MemberFactory(), MemberFactory()
    assert bonus_credit_earned(amounts={a.pk: 1500, b.pk: 0}, reference="seeding") == 1
    bonus_credit_earned(amounts={a.pk: 500}, reference="seeding")
    assert balance(a) == 2000
    assert not BonusAccount.objects.filter(member=b).exists()
    rows = list(BonusTransaction.objects.filter(member=a).order_by("id"))
    assert [(t.kind, t.amount, t.balance_after) for t in rows] == [
        (BonusKind.EARN, 1500, 1500),
        (BonusKind.EARN, 500, 2000),
    ]


@pytest.mark.django_db
def test_spending_more_than_the_balance_is_refused_and_changes_nothing():
    member = MemberFactory()
    bonus_credit_earned(amounts={member.pk: 100 * MILLI}, reference="seeding")
    with pytest.raises(InvalidInput) as err:
        bonus_spend(member_id=member.pk, cost=100 * MILLI + 1, reference="upload")
    assert err.value.field == "item" and "Not enough points" in err.value.message
    assert balance(member) == 100 * MILLI
    tx = bonus_spend(member_id=member.pk, cost=100 * MILLI, reference="upload")
    assert (tx.amount, tx.balance_after, balance(member)) == (-100 * MILLI, 0, 0)
    with pytest.raises(InvalidInput):
        bonus_spend(member_id=member.pk, cost=1, reference="upload")
    with pytest.raises(InvalidInput):  # no account row at all
        bonus_spend(member_id=MemberFactory().pk, cost=1, reference="upload")
    with pytest.raises(InvalidInput):  # a "negative cost" would be a credit
        bonus_spend(member_id=member.pk, cost=-5, reference="upload")
    assert balance(member) == 0


@pytest.mark.django_db
def test_the_database_refuses_a_negative_balance():
    member = MemberFactory()
    bonus_credit_earned(amounts={member.pk: 10}, reference="seeding")
    with pytest.raises(IntegrityError), transaction.atomic():
        BonusAccount.objects.filter(member=member).update(balance=-1)
    assert balance(member) == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_spending_on_separate_connections_never_overdraws():
    """Twelve threads, each on its own PostgreSQL connection, try to spend 30 points from a
    balance of 100 at the same moment, each holding its transaction open a little after the
    spend: exactly three succeed and the balance ends at 10, never below zero."""
    member = MemberFactory()
    bonus_credit_earned(amounts={member.pk: 100 * MILLI}, reference="seeding")
    workers = 12
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                bonus_spend(member_id=member.pk, cost=30 * MILLI, reference="upload")
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(0.05)")  # widen the race window
            result = "ok"
        except InvalidInput:
            result = "refused"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 9
    assert balance(member) == 10 * MILLI
    spends = BonusTransaction.objects.filter(member=member, kind=BonusKind.SPEND)
    assert spends.count() == 3
    assert sorted(spends.values_list("balance_after", flat=True)) == [
        10 * MILLI,
        40 * MILLI,
        70 * MILLI,
    ]


@pytest.mark.django_db
def test_staff_adjustment_is_audited_and_bounded():
    staff, member = MemberFactory(is_staff=True), MemberFactory()
    tx = bonus_adjust(actor=staff, member=member, amount=5 * MILLI, reason="contest prize")
    assert (tx.kind, tx.amount, tx.balance_after, tx.actor_id) == (
        BonusKind.ADJUST,
        5 * MILLI,
        5 * MILLI,
        staff.pk,
    )
    log = AuditLog.objects.get(action="bonus_adjust")
    assert log.old_values == {"bonus_balance": 0} and log.new_values == {"bonus_balance": 5000}
    assert log.reason == "contest prize" and log.actor_id == staff.pk
    with pytest.raises(InvalidInput) as err:
        bonus_adjust(actor=staff, member=member, amount=-6 * MILLI, reason="too much")
    assert err.value.field == "amount"
    bonus_adjust(actor=staff, member=member, amount=-5 * MILLI, reason="abuse")
    assert balance(member) == 0
    with pytest.raises(InvalidInput):
        bonus_adjust(actor=staff, member=member, amount=1, reason="   ")
    with pytest.raises(InvalidInput):
        bonus_adjust(actor=staff, member=member, amount=0, reason="nothing")


@pytest.mark.django_db
def test_nobody_grants_themselves_points_and_members_cannot_adjust():
    staff, member = MemberFactory(is_staff=True), MemberFactory()
    with pytest.raises(NotPermitted):
        bonus_adjust(actor=staff, member=staff, amount=MILLI, reason="me")
    with pytest.raises(NotPermitted):
        bonus_adjust(actor=member, member=MemberFactory(), amount=MILLI, reason="friend")
    staff.is_banned = True
    with pytest.raises(NotPermitted):
        bonus_adjust(actor=staff, member=member, amount=MILLI, reason="banned staff")
    assert not BonusTransaction.objects.exists()
    assert not AuditLog.objects.filter(action="bonus_adjust").exists()


@pytest.mark.django_db
def test_my_data_export_holds_the_bonus_balance_and_transactions():
    from core import mydata

    member, staff = MemberFactory(), MemberFactory(is_staff=True)
    assert mydata.member_export(member)["sections"]["bonus"] is None
    bonus_credit_earned(amounts={member.pk: 2500}, reference="seeding")
    bonus_adjust(actor=staff, member=member, amount=-500, reason="correction")
    section = mydata.member_export(member)["sections"]["bonus"]
    assert section["balance_millipoints"] == 2000
    assert [(t["kind"], t["amount"], t["reference"]) for t in section["transactions"]] == [
        ("earn", 2500, "seeding"),
        ("adjust", -500, "correction"),
    ]
