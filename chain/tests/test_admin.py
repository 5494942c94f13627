"""Chain admin pages render for staff, rows are read-only, actions call services and report."""

from __future__ import annotations

import pytest
from django.test import Client

from chain.models import ChainConfig, ChainMember, Migration, PushBatch
from chain.services.push import members_push
from chain.tests.sitekit import chain_settings, credit, keyed_member, set_up_contracts
from core.models import AuditLog
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(MemberFactory(is_staff=True, is_superuser=True))
    return client


def test_pages_render_and_rows_are_read_only(anvil, admin_client):
    with chain_settings(anvil):
        set_up_contracts()
        keyed = keyed_member()
        credit(keyed.member, 10, 10)
        members_push()
        batch = PushBatch.objects.get()
        for url in (
            "/admin/chain/chainconfig/",
            "/admin/chain/chainconfig/1/change/",
            "/admin/chain/pushbatch/",
            f"/admin/chain/pushbatch/{batch.pk}/change/",
            "/admin/chain/chainmember/",
            f"/admin/chain/chainmember/{keyed.member.pk}/change/",
            "/admin/chain/migration/",
        ):
            page = admin_client.get(url)
            assert page.status_code == 200, url
            assert anvil.dev_private_key(0)[2:].encode() not in page.content
        assert (
            batch.tx_hash_hex.encode()
            in admin_client.get(f"/admin/chain/pushbatch/{batch.pk}/change/").content
        )
        assert admin_client.get("/admin/chain/pushbatch/add/").status_code == 403
        assert admin_client.post(f"/admin/chain/pushbatch/{batch.pk}/delete/").status_code == 403


def test_unblock_action_is_audited(admin_client):
    keyed = keyed_member()
    record = ChainMember.objects.create(
        member=keyed.member, record_id=b"\1" * 32, public_key=keyed.pk, is_blocked=True
    )
    response = admin_client.post(
        "/admin/chain/chainmember/",
        {"action": "unblock", "_selected_action": [record.pk]},
        follow=True,
    )
    assert b"1 members unblocked" in response.content
    record.refresh_from_db()
    assert not record.is_blocked
    assert AuditLog.objects.filter(action="chain_member_unblock").exists()


def test_push_now_without_chain_reports_not_configured(admin_client):
    ChainConfig.objects.get_or_create(pk=1)
    response = admin_client.post(
        "/admin/chain/chainconfig/",
        {"action": "push_now", "_selected_action": [1]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Chain not configured" in response.content
    assert Migration.objects.count() == 0
