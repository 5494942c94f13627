"""Imported reputation (``Ledger.imported_*``, written by a chain migration) and the ratio rule:
one owner, ``reputation.policy.site_figures``, under the import policy from settings
(docs/chain.md, "Imported reputation and the ratio rule")."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin as django_admin
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reputation.models import Ledger
from reputation.policy import ImportedPolicy, leech_verdict, site_figures
from reputation.selectors import below_min_ratio, imported_policy, ledger_site_figures
from reputation.services import ledger_credit_imported
from tracker.models import Member
from tracker.tests.factories import MemberFactory

GIB = 1024**3
ON = ImportedPolicy()


def figures(**kw: int) -> tuple[int, int]:
    return site_figures(
        uploaded=kw.get("up", 0),
        downloaded=kw.get("down", 0),
        bonus_uploaded=kw.get("bonus", 0),
        imported_uploaded=kw.get("iup", 0),
        imported_downloaded=kw.get("idown", 0),
        imported=kw.get("policy", ON),
    )


# --- the pure rule -------------------------------------------------------------------------


def test_imported_figures_count_on_both_sides_by_default():
    assert figures(up=1, down=10, bonus=2, iup=40, idown=7) == (1 + 2 + 40, 10 + 7)


def test_policy_switches_each_side_off():
    off_up = ImportedPolicy(upload_counts=False)
    off_down = ImportedPolicy(download_counts=False)
    off = ImportedPolicy(upload_counts=False, download_counts=False)
    assert figures(up=1, down=10, iup=40, idown=7, policy=off_up) == (1, 17)
    assert figures(up=1, down=10, iup=40, idown=7, policy=off_down) == (41, 10)
    assert figures(up=1, down=10, bonus=3, iup=40, idown=7, policy=off) == (4, 10)


def test_cap_bounds_the_imported_upload_and_keeps_the_imported_ratio():
    capped = ImportedPolicy(upload_cap_bytes=10 * GIB)
    # 40 GiB up / 20 GiB down imported: 10 GiB counted, download scaled by 10/40 (ratio 2.0 kept).
    assert figures(up=GIB, down=GIB, iup=40 * GIB, idown=20 * GIB, policy=capped) == (
        11 * GIB,
        6 * GIB,
    )
    # Under the cap nothing changes; cap 0 means no cap.
    assert figures(iup=9 * GIB, idown=20 * GIB, policy=capped) == (9 * GIB, 20 * GIB)
    assert figures(iup=400 * GIB, idown=3, policy=ImportedPolicy(upload_cap_bytes=0)) == (
        400 * GIB,
        3,
    )
    # Exact integer scaling, no float rounding on huge figures.
    assert figures(iup=3 * 10**18, idown=10**18 + 1, policy=capped) == (
        10 * GIB,
        (10**18 + 1) * 10 * GIB // (3 * 10**18),
    )


def test_an_import_cannot_bring_only_the_good_side():
    # A bad history elsewhere (1 up / 100 down) makes the ratio worse here, under the defaults.
    own = figures(up=10 * GIB, down=10 * GIB)
    with_import = figures(up=10 * GIB, down=10 * GIB, iup=GIB, idown=100 * GIB)
    assert with_import[0] / with_import[1] < own[0] / own[1]
    # The cap never makes an imported ratio better than it was.
    capped = ImportedPolicy(upload_cap_bytes=GIB)
    up, down = figures(iup=50 * GIB, idown=100 * GIB, policy=capped)
    assert up / down == pytest.approx(0.5, rel=1e-9)


def test_negative_imported_figures_count_as_zero():
    assert figures(up=5, down=5, iup=-100, idown=-100) == (5, 5)


def test_settings_build_the_policy(settings):
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = False
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = True
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = -5
    assert imported_policy() == ImportedPolicy(
        upload_counts=False, download_counts=True, upload_cap_bytes=0
    )


# --- the SQL form agrees with the Python one --------------------------------------------------

CASES = {
    # name: (uploaded, downloaded, imported_uploaded, imported_downloaded)
    "lifted_by_import": (GIB, 10 * GIB, 20 * GIB, 2 * GIB),
    "sunk_by_import": (5 * GIB, 6 * GIB, 0, 30 * GIB),
    "capped_import": (GIB, 10 * GIB, 400 * GIB, 40 * GIB),
    "own_only_below": (GIB, 10 * GIB, 0, 0),
    "own_only_fine": (6 * GIB, 10 * GIB, 0, 0),
    "grace_by_own_only": (0, GIB // 2, 0, 4 * GIB),
}
POLICIES = [
    ImportedPolicy(),
    ImportedPolicy(upload_counts=False),
    ImportedPolicy(download_counts=False),
    ImportedPolicy(upload_cap_bytes=5 * GIB),
    ImportedPolicy(upload_cap_bytes=0),
]


@pytest.mark.django_db
@pytest.mark.parametrize("policy", POLICIES, ids=str)
def test_below_min_ratio_and_the_leech_verdict_agree(settings, policy):
    settings.MIN_RATIO = 0.5
    settings.PBTS_RATIO_GRACE_BYTES = GIB
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = policy.upload_counts
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = policy.download_counts
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = policy.upload_cap_bytes
    members = {}
    for name, (up, down, iup, idown) in CASES.items():
        member = MemberFactory(username=name)
        Ledger.objects.filter(member=member).update(
            uploaded=up, downloaded=down, imported_uploaded=iup, imported_downloaded=idown
        )
        members[name] = member
    refused = set()
    for member in members.values():
        up, down = ledger_site_figures(Ledger.objects.get(member=member))
        verdict = leech_verdict(
            uploaded=up, downloaded=down, min_ratio=0.5, grace_bytes=GIB, exempt=False
        )
        if not verdict.allowed:
            refused.add(member.pk)
    on_ledgers = set(
        Ledger.objects.filter(below_min_ratio(on="ledger")).values_list("member_id", flat=True)
    )
    on_members = set(
        Member.objects.filter(below_min_ratio(on="member")).values_list("pk", flat=True)
    )
    assert on_ledgers == on_members == refused
    # And the cases do exercise the policy: the default refuses exactly these.
    if policy == ImportedPolicy():
        names = {m.username for m in Member.objects.filter(pk__in=refused)}
        assert names == {"sunk_by_import", "own_only_below", "grace_by_own_only"}


# --- the ratio members see -------------------------------------------------------------------


@pytest.mark.django_db
def test_profile_and_api_show_the_ratio_the_rule_uses(settings):
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    member = MemberFactory()
    Ledger.objects.filter(member=member).update(uploaded=GIB, downloaded=4 * GIB)
    ledger_credit_imported(member_id=member.pk, uploaded=11 * GIB, downloaded=GIB)
    api = APIClient()
    api.force_authenticate(member)
    me = api.get("/api/v1/me/").json()
    assert (me["uploaded"], me["downloaded"]) == (GIB, 4 * GIB)  # own figures stay own
    assert me["ratio"] == pytest.approx(12 / 5)
    page = Client()
    page.force_login(member)
    html = page.get(reverse("profile")).content.decode()
    assert re.search(r'class="ratio">\s*2\.40\s*<', html), html
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = False
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = False
    assert api.get("/api/v1/me/").json()["ratio"] == pytest.approx(0.25)
    assert 'class="ratio">0.25<' in page.get(reverse("profile")).content.decode()


# --- attacks: nobody but the chain migration writes imported figures ---------------------------


@pytest.mark.django_db
def test_a_member_cannot_write_imported_figures_through_the_api_or_the_admin_form():
    member = MemberFactory()
    api = APIClient()
    api.force_authenticate(member)
    body = {"imported_uploaded": 10**15, "imported_downloaded": 0}
    for method in (api.post, api.put, api.patch):
        assert method("/api/v1/me/", body, format="json").status_code == 405
    # Staff see imported figures in the admin, read only (the Ledger admin edits nothing).
    ledger_admin = django_admin.site._registry[Ledger]
    assert {"imported_uploaded", "imported_downloaded"} <= set(ledger_admin.readonly_fields)
    assert set(ledger_admin.fields) <= set(ledger_admin.readonly_fields)
    ledger = Ledger.objects.get(member=member)
    ledger.refresh_from_db()
    assert (ledger.imported_uploaded, ledger.imported_downloaded) == (0, 0)
    assert ledger_site_figures(ledger) == (0, 0)


@pytest.mark.django_db
def test_a_repeated_import_replaces_never_adds():
    member = MemberFactory()
    for _ in range(3):
        ledger_credit_imported(member_id=member.pk, uploaded=40 * GIB, downloaded=10 * GIB)
    ledger = Ledger.objects.get(member=member)
    assert (ledger.imported_uploaded, ledger.imported_downloaded) == (40 * GIB, 10 * GIB)
    # Verified figures are not touched by an import (chain push compares imported + verified).
    assert (ledger.verified_uploaded, ledger.verified_downloaded) == (0, 0)
