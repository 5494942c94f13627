""" "Export my data": the registry, the export's content, the page download and the API."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from core import mydata
from core.notifications import notify
from reputation.services import ledger_credit_announced
from tracker.models import TorrentHistory
from tracker.services.members import invite_create, member_api_token
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    member = MemberFactory(username="alice", email="alice@example.org")
    torrent = upload_torrent(member, name="alice-upload")
    TorrentHistory.objects.create(member=member, torrent=torrent, uploaded=1234, downloaded=56)
    ledger_credit_announced(totals={member.pk: (1234, 56, 7)})
    invite_create(inviter=MemberFactory(is_staff=True))  # not hers
    notify(member=member, kind="k", subject="alice-note")
    return member


@pytest.fixture
def bob():
    member = MemberFactory(username="bob-other", email="bob-secret@example.org")
    upload_torrent(member, name="bob-upload")
    notify(member=member, kind="k", subject="bob-note")
    return member


def test_every_app_registered_its_sections():
    assert {
        "account",
        "invites",
        "uploads",
        "torrent_history",
        "ledger",
        "receipts",
        "chain",
        "notifications",
    } <= set(mydata.section_names())


def test_register_section_refuses_empty_name():
    with pytest.raises(ValueError):
        mydata.register_section(" ", lambda member: None)


def test_a_registered_section_is_exported(alice):
    mydata.register_section("zz_test", lambda member: {"id": member.pk, "n": 3})
    try:
        assert mydata.member_export(alice)["sections"]["zz_test"] == {"id": alice.pk, "n": 3}
    finally:
        mydata._sections.pop("zz_test")


def test_export_holds_the_members_data(alice):
    data = mydata.member_export(alice)
    assert data["format"] == "pbts-my-data/1" and data["member_id"] == alice.pk
    sections = data["sections"]
    assert sections["account"]["username"] == "alice"
    assert sections["account"]["email"] == "alice@example.org"
    assert [t["name"] for t in sections["uploads"]] == ["alice-upload"]
    assert sections["torrent_history"][0]["uploaded"] == 1234
    assert sections["ledger"]["uploaded"] == 1234 and sections["ledger"]["seeding_seconds"] == 7
    assert [n["subject"] for n in sections["notifications"]["notifications"]] == ["alice-note"]
    assert sections["receipts"]["keys"] == []
    assert sections["chain"]["record"] is None


def test_export_has_no_password_hash_and_masks_secrets(alice):
    text = mydata.member_export_json(alice)
    alice.refresh_from_db()
    assert alice.password not in text and "md5$" not in text and "pbkdf2" not in text
    assert alice.passkey not in text
    assert member_api_token(alice) not in text
    account = json.loads(text)["sections"]["account"]
    assert account["passkey"] == alice.passkey[:4] + "…"
    assert account["api_token"] == member_api_token(alice)[:4] + "…"


def test_export_has_no_other_members_data(alice, bob):
    text = mydata.member_export_json(alice)
    for foreign in ("bob-other", "bob-secret@example.org", "bob-upload", "bob-note"):
        assert foreign not in text
    assert bob.passkey not in text


def test_invite_codes_are_masked(alice):
    invite = invite_create(inviter=MemberFactory(is_staff=True))
    invite.inviter = alice
    invite.save()
    text = mydata.member_export_json(alice)
    assert invite.code not in text
    sent = json.loads(text)["sections"]["invites"]["sent"]
    assert sent[0]["code"] == invite.code[:6] + "…"


def test_page_and_download(client, alice, bob):
    assert client.get("/profile/export/").status_code == 302  # anonymous: login first
    client.force_login(alice)
    page = client.get("/profile/export/")
    assert page.status_code == 200 and b"Download my data" in page.content
    download = client.get("/profile/export/?download=1")
    assert download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"].startswith('attachment; filename="pbts-my-data-')
    assert download["Cache-Control"] == "no-store"
    data = json.loads(download.content)
    assert data["member_id"] == alice.pk
    assert b"bob-note" not in download.content


def test_api_export_is_the_callers(alice, bob):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(alice)}")
    data = client.get("/api/v1/me/export/").json()
    assert data["member_id"] == alice.pk
    assert data["sections"]["account"]["username"] == "alice"
    assert "bob-note" not in json.dumps(data)
