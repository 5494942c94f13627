"""The profile page's receipts section, and the receipts and ledger admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from core.models import AuditLog
from receipts.models import AggregateSignature, BLSKey, Receipt, Report
from receipts.services.verify import receipt_batch_verify
from receipts.site import site_realm
from receipts.tests.conftest import PIECE, api_for, make_actor, make_receipt, post_json, single
from reputation.models import Ledger
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db


def logged_in(member) -> Client:
    client = Client()
    assert client.login(username=member.username, password=DEFAULT_PASSWORD)
    return client


@pytest.fixture
def staff_client() -> Client:
    return logged_in(MemberFactory(is_staff=True))


@pytest.fixture
def verified(uploader, downloader, swarm) -> Receipt:
    data = make_receipt(uploader, downloader, swarm)
    post_json(api_for(uploader.member), "/report", {"receipts": [single(data, downloader)]})
    receipt_batch_verify()
    return Receipt.objects.get()


def test_profile_shows_the_active_key_and_verified_figures(uploader, verified):
    key = BLSKey.objects.get(member=uploader.member)
    page = logged_in(uploader.member).get(reverse("profile")).content.decode()
    assert key.fingerprint in page
    assert key.created_at.strftime("%Y-%m-%d") in page
    assert "Verified uploaded" in page and "16.00 KiB" in page
    assert site_realm().hex() in page  # what `receipts.client sign --realm` needs


def test_profile_without_a_key_says_how_to_make_one():
    member = MemberFactory()
    page = logged_in(member).get(reverse("profile")).content.decode()
    assert "none registered" in page and "python -m receipts.client keygen" in page


def test_other_members_do_not_see_the_receipts_section(uploader):
    other = MemberFactory()
    page = logged_in(other).get(reverse("member_detail", args=[uploader.member.username]))
    assert "BLS key" not in page.content.decode()


@pytest.mark.parametrize("model", [BLSKey, Report, AggregateSignature, Receipt, Ledger])
def test_admin_lists_and_shows_every_receipts_model(staff_client, verified, model):
    meta = model._meta
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    assert staff_client.get(changelist).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        assert staff_client.get(change).status_code == 200


def test_reports_and_receipts_are_read_only_in_admin(staff_client, verified):
    assert staff_client.get(reverse("admin:receipts_receipt_add")).status_code == 403
    assert staff_client.get(reverse("admin:receipts_report_add")).status_code == 403
    assert staff_client.get(reverse("admin:receipts_blskey_add")).status_code == 403
    delete = reverse("admin:receipts_receipt_delete", args=[verified.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert Receipt.objects.filter(pk=verified.pk).exists()


def test_receipt_admin_finds_a_receipt_by_its_id(staff_client, verified):
    url = reverse("admin:receipts_receipt_changelist")
    response = staff_client.get(url, {"q": bytes(verified.receipt_id).hex()})
    assert list(response.context["cl"].result_list) == [verified]
    assert list(staff_client.get(url, {"q": "f" * 64}).context["cl"].result_list) == []


def test_admin_revokes_a_key_with_an_audited_reason(staff_client, uploader):
    key = BLSKey.objects.get(member=uploader.member)
    url = reverse("admin:receipts_blskey_changelist")
    data = {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [str(key.pk)]}
    asked = staff_client.post(url, {**data, "index": "0"})
    assert "admin/core/action_reason.html" in [t.name for t in asked.templates]
    done = staff_client.post(url, {**data, "apply": "yes", "reason": "key leaked"})
    assert done.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoke_reason == "key leaked"
    assert AuditLog.objects.get(action="bls_key_revoke").reason == "key leaked"


def test_ledger_admin_flags_announced_upload_far_above_verified(staff_client, settings):
    settings.PBTS_UPLOAD_GAP_FACTOR = 2.0
    settings.PBTS_UPLOAD_GAP_BYTES = 1024**3
    liar, honest, new = make_actor(), make_actor(), make_actor()
    Ledger.objects.filter(member=liar.member).update(uploaded=5 * 1024**3, verified_uploaded=PIECE)
    Ledger.objects.filter(member=honest.member).update(
        uploaded=5 * 1024**3, verified_uploaded=3 * 1024**3
    )
    Ledger.objects.filter(member=new.member).update(uploaded=1024**3)  # within the allowance
    url = reverse("admin:reputation_ledger_changelist")
    flagged = staff_client.get(url, {"upload_gap": "gap"}).context["cl"].result_list
    assert [row.member for row in flagged] == [liar.member]
    backed = staff_client.get(url, {"upload_gap": "ok"}).context["cl"].result_list
    assert liar.member not in [row.member for row in backed]
    assert {honest.member, new.member} <= {row.member for row in backed}
    page = staff_client.get(url).content.decode()
    assert "upload gap" in page.lower()
