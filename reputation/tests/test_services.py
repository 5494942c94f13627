"""reputation.services is the ledger's only writer; reputation.selectors holds the rules that
every admin list and report applies to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.bulksql import MAX_BIGINT
from reputation.models import Ledger
from reputation.selectors import below_min_ratio, upload_gap
from reputation.services import (
    ledger_credit_announced,
    ledger_credit_imported,
    ledger_credit_verified,
    ledger_flag_clamped,
    ledger_open,
)
from tracker.models import Member
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]


def figures(member: Member) -> tuple[int, ...]:
    ledger = Ledger.objects.get(member=member)
    return (
        ledger.uploaded,
        ledger.downloaded,
        ledger.seeding_seconds,
        ledger.verified_uploaded,
        ledger.verified_downloaded,
        ledger.imported_uploaded,
        ledger.imported_downloaded,
    )


def test_ledger_open_is_idempotent():
    member = MemberFactory()  # member_create opened it already
    assert ledger_open(member_id=member.pk).pk == member.pk
    assert Ledger.objects.filter(member=member).count() == 1


def test_announced_credit_adds_in_one_statement_and_saturates():
    a, b = MemberFactory(), MemberFactory()
    with CaptureQueriesContext(connection) as queries:
        ledger_credit_announced(totals={a.pk: (10, 20, 30), b.pk: (1, 2, 3)})
    assert len(queries) == 1
    ledger_credit_announced(totals={a.pk: (5, MAX_BIGINT, 0)})
    assert figures(a)[:3] == (15, MAX_BIGINT, 30)  # saturated, not overflowed
    assert figures(b)[:3] == (1, 2, 3)
    assert figures(a)[3:] == (0, 0, 0, 0)  # announced credit never touches the rest


def test_announced_credit_for_a_deleted_member_is_skipped():
    member = MemberFactory()
    gone = MemberFactory()
    gone_id = gone.pk
    gone.delete()
    ledger_credit_announced(totals={member.pk: (1, 1, 1), gone_id: (9, 9, 9)})
    assert figures(member)[:3] == (1, 1, 1)
    assert not Ledger.objects.filter(member_id=gone_id).exists()


def test_verified_credit_goes_up_to_uploaders_and_down_to_downloaders():
    up, down = MemberFactory(), MemberFactory()
    Ledger.objects.filter(member=down).delete()  # a row is created when missing
    ledger_credit_verified(uploaded={up.pk: 3 * GIB}, downloaded={down.pk: 3 * GIB})
    ledger_credit_verified(uploaded={up.pk: GIB, down.pk: 7}, downloaded={})
    assert figures(up)[3:5] == (4 * GIB, 0)
    assert figures(down)[3:5] == (7, 3 * GIB)
    assert figures(up)[:3] == (0, 0, 0)  # announced figures untouched


def test_imported_credit_is_absolute_so_a_rerun_changes_nothing():
    member = MemberFactory()
    for _ in range(2):
        ledger_credit_imported(member_id=member.pk, uploaded=40 * GIB, downloaded=10 * GIB)
    assert figures(member)[5:] == (40 * GIB, 10 * GIB)


@pytest.fixture
def ratio_members(settings):
    """Four members around the ratio rule (MIN_RATIO 0.5, 1 GiB grace)."""
    settings.MIN_RATIO = 0.5
    settings.PBTS_RATIO_GRACE_BYTES = GIB
    cases = {
        "below": (GIB, 4 * GIB, False),
        "exempt": (GIB, 4 * GIB, True),
        "in_grace": (0, GIB, False),
        "fine": (2 * GIB, 4 * GIB, False),
    }
    made = {}
    for name, (up, down, exempt) in cases.items():
        member = MemberFactory(username=name)
        Member.objects.filter(pk=member.pk).update(is_ratio_exempt=exempt)
        Ledger.objects.filter(member=member).update(uploaded=up, downloaded=down)
        made[name] = member
    return made


def test_below_min_ratio_is_one_rule_on_ledgers_and_members(ratio_members):
    on_ledgers = set(
        Ledger.objects.filter(below_min_ratio(on="ledger")).values_list("member_id", flat=True)
    )
    on_members = set(
        Member.objects.filter(below_min_ratio(on="member")).values_list("pk", flat=True)
    )
    assert on_ledgers == on_members == {ratio_members["below"].pk}


def test_below_min_ratio_follows_the_thresholds_staff_set_at_run_time(ratio_members):
    # /config (tracker.services.runtime_config) changes the rule for the admin's filters too.
    from tracker.services.runtime_config import runtime_config_update

    staff = MemberFactory(is_staff=True)
    runtime_config_update(actor=staff, changes={"min_ratio": 0.6})  # "fine" is at 0.5 now
    below = set(Member.objects.filter(below_min_ratio(on="member")).values_list("pk", flat=True))
    assert below == {ratio_members["below"].pk, ratio_members["fine"].pk}
    runtime_config_update(actor=staff, changes={"min_ratio": 0.1, "ratio_grace_bytes": 0})
    below = set(
        Ledger.objects.filter(below_min_ratio(on="ledger")).values_list("member_id", flat=True)
    )
    assert below == {ratio_members["in_grace"].pk}  # 0 uploaded, past a grace of 0 bytes


def test_both_admin_ratio_filters_list_the_same_members(ratio_members):
    staff = MemberFactory(is_staff=True)
    client = Client()
    client.force_login(staff)
    listed = {}
    for model in (Ledger, Member):
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        rows = client.get(url, {"ratio": "below"}).context["cl"].result_list
        listed[model] = {getattr(row, "member_id", row.pk) for row in rows}
    assert listed[Ledger] == listed[Member] == {ratio_members["below"].pk}
    assert admin.site.is_registered(Ledger)


def test_upload_gap_flags_announced_upload_far_above_verified(settings):
    settings.PBTS_UPLOAD_GAP_FACTOR = 2.0
    settings.PBTS_UPLOAD_GAP_BYTES = GIB
    liar, honest = MemberFactory(), MemberFactory()
    Ledger.objects.filter(member=liar).update(uploaded=10 * GIB, verified_uploaded=GIB)
    Ledger.objects.filter(member=honest).update(uploaded=3 * GIB, verified_uploaded=GIB)
    flagged = set(Ledger.objects.filter(upload_gap()).values_list("member_id", flat=True))
    assert flagged == {liar.pk}


# Writes to the ledger outside reputation/: raw SQL on its table, or ORM writes on the model.
_WRITES = re.compile(
    r"reputation_ledger|Ledger\.objects\.(?:filter\([^)]*\)\.)?"
    r"(?:update|create|bulk_create|get_or_create|update_or_create)\b"
)


def test_no_app_but_reputation_writes_the_ledger():
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"reputation", ".venv", "node_modules", "bench", "build"}:
            continue
        if "tests" in rel.parts or "migrations" in rel.parts:
            continue
        if _WRITES.search(path.read_text()):
            offenders.append(str(rel))
    assert offenders == []


def test_flagging_counts_clamped_batches_and_the_admin_filters_them():
    liar, honest = MemberFactory(), MemberFactory()
    ledger_flag_clamped(member_ids={liar.pk})
    ledger_flag_clamped(member_ids={liar.pk})
    assert Ledger.objects.get(member=liar).clamped_announces == 2
    staff = MemberFactory(is_staff=True)
    client = Client()
    client.force_login(staff)
    url = reverse("admin:reputation_ledger_changelist")
    rows = client.get(url, {"clamped": "yes"}).context["cl"].result_list
    assert {row.member_id for row in rows} == {liar.pk}
    assert honest.pk not in {row.member_id for row in rows}
