"""Account deletion (``member_anonymise``): the page, the rules, and what stays consistent."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db.models import Count, Sum
from django.test import Client
from rest_framework.test import APIClient

from core.errors import InvalidInput, NotPermitted
from core.models import AuditLog, Notification, NotificationSettings
from core.notifications import notify, set_email_enabled
from reputation.models import Ledger
from reputation.services import ledger_credit_announced
from tracker.models import ClientPrefix, Invite, Member, Torrent, TorrentHistory
from tracker.services.members import (
    invite_create,
    member_anonymise,
    member_api_token,
    member_create,
)
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.tests.test_announce import announce
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


def site_totals() -> dict:
    """What swarm and ledger figures add up to across the site."""
    return {
        **Ledger.objects.aggregate(
            up=Sum("uploaded"), down=Sum("downloaded"), seed=Sum("seeding_seconds")
        ),
        **TorrentHistory.objects.aggregate(
            h_up=Sum("uploaded"), h_down=Sum("downloaded"), rows=Count("id")
        ),
        "torrents": Torrent.objects.count(),
        "members": Member.objects.count(),
    }


@pytest.fixture
def alice():
    member = MemberFactory(username="alice", email="alice@example.org")
    other = MemberFactory()
    torrent = upload_torrent(member, name="alice-upload")
    TorrentHistory.objects.create(member=member, torrent=torrent, uploaded=500, downloaded=20)
    TorrentHistory.objects.create(member=other, torrent=torrent, uploaded=20, downloaded=500)
    ledger_credit_announced(totals={member.pk: (500, 20, 9), other.pk: (20, 500, 1)})
    notify(member=member, kind="k", subject="hello")
    set_email_enabled(member=member, enabled=True)
    member.is_staff = True
    member.save()
    invite_create(inviter=member)
    return member


def test_deletion_anonymises_and_keeps_totals(alice):
    before = site_totals()
    old_passkey, old_token = alice.passkey, member_api_token(alice)
    member_anonymise(member=alice, password=DEFAULT_PASSWORD)
    assert site_totals() == before
    alice.refresh_from_db()
    assert alice.username == f"deleted-{alice.pk}"
    assert alice.email == "" and not alice.is_active and not alice.is_staff
    assert not alice.has_usable_password()
    assert alice.passkey != old_passkey and member_api_token(alice) != old_token
    assert Torrent.objects.get(name="alice-upload").uploader_id == alice.pk
    assert Ledger.objects.get(member=alice).uploaded == 500
    assert not Notification.objects.filter(member=alice).exists()
    assert not NotificationSettings.objects.filter(member=alice).exists()
    assert not Invite.objects.filter(inviter=alice).exists()
    row = AuditLog.objects.get(action="member_delete")
    assert row.actor_id == alice.pk and row.target_id == str(alice.pk)
    assert "alice" not in str(row.old_values) + str(row.new_values) + row.target_repr


def test_wrong_or_empty_password_is_refused_and_changes_nothing(alice):
    for password in ("wrong", ""):
        with pytest.raises(InvalidInput) as exc:
            member_anonymise(member=alice, password=password)
        assert exc.value.field == "password"
    alice.refresh_from_db()
    assert alice.username == "alice" and alice.is_active
    assert Notification.objects.filter(member=alice).exists()


def test_account_without_password_cannot_be_deleted_without_one():
    member = member_create(username="nopass")
    with pytest.raises(InvalidInput):
        member_anonymise(member=member, password="")


def test_last_superuser_cannot_delete_themselves():
    owner = MemberFactory(is_superuser=True)
    Member.objects.filter(is_superuser=True).exclude(pk=owner.pk).update(is_superuser=False)
    with pytest.raises(NotPermitted):
        member_anonymise(member=owner, password=DEFAULT_PASSWORD)
    owner.refresh_from_db()
    assert owner.is_active and owner.is_superuser
    # An inactive superuser does not count as another one.
    MemberFactory(is_superuser=True, username="ghost")
    Member.objects.filter(username="ghost").update(is_active=False)
    with pytest.raises(NotPermitted):
        member_anonymise(member=owner, password=DEFAULT_PASSWORD)
    MemberFactory(is_superuser=True)
    member_anonymise(member=owner, password=DEFAULT_PASSWORD)
    owner.refresh_from_db()
    assert not owner.is_active and not owner.is_superuser


def test_deleted_account_cannot_be_deleted_twice(alice):
    member_anonymise(member=alice, password=DEFAULT_PASSWORD)
    with pytest.raises(InvalidInput):
        member_anonymise(member=alice, password=DEFAULT_PASSWORD)


def test_anonymous_names_cannot_be_registered():
    for name in ("deleted-12", "Deleted-7", "deleted-3-abc123"):
        with pytest.raises(InvalidInput):
            member_create(username=name, password=DEFAULT_PASSWORD)
    assert member_create(username="deleted-me", password=DEFAULT_PASSWORD).pk


def test_name_taken_before_the_rule_gets_a_suffix(alice):
    squatter = MemberFactory()
    Member.objects.filter(pk=squatter.pk).update(username=f"deleted-{alice.pk}")
    member_anonymise(member=alice, password=DEFAULT_PASSWORD)
    alice.refresh_from_db()
    assert alice.username.startswith(f"deleted-{alice.pk}-")


def test_page_wrong_password_is_a_form_error(client, alice):
    client.force_login(alice)
    assert client.get("/profile/delete/").status_code == 200
    response = client.post("/profile/delete/", {"password": "wrong", "confirm": "on"})
    assert response.status_code == 400
    assert "That is not your password." in response.content.decode()
    response = client.post("/profile/delete/", {"password": DEFAULT_PASSWORD})
    assert response.status_code == 400 and "Tick the box" in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


def test_page_deletes_ends_sessions_and_login_fails(alice):
    browser, other_device = Client(), Client()
    assert browser.login(username="alice", password=DEFAULT_PASSWORD)
    assert other_device.login(username="alice", password=DEFAULT_PASSWORD)
    response = browser.post("/profile/delete/", {"password": DEFAULT_PASSWORD, "confirm": "on"})
    assert response.status_code == 302
    assert other_device.get("/profile/").status_code == 302  # logged out everywhere
    assert browser.get("/profile/").status_code == 302
    alive = [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id")]
    assert alive == []
    assert not Client().login(username="alice", password=DEFAULT_PASSWORD)
    anon = f"deleted-{alice.pk}"
    assert not Client().login(username=anon, password=DEFAULT_PASSWORD)
    response = Client().post("/login/", {"username": "alice", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200  # the form again, with an error


def test_deleted_member_cannot_announce_or_use_the_api(client, alice):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    torrent = Torrent.objects.get(name="alice-upload")
    old_token = member_api_token(alice)
    assert b"peers" in announce(client, alice, torrent)
    member_anonymise(member=alice, password=DEFAULT_PASSWORD)
    assert announce(client, alice, torrent, peer=b"-TR4060-new") == {
        b"failure reason": b"Unknown passkey"
    }
    alice.refresh_from_db()  # even the new passkey: the account is inactive
    assert b"failure reason" in announce(client, alice, torrent, peer=b"-TR4060-nw2")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old_token}")
    assert api.get("/api/v1/me/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(alice)}")
    assert api.get("/api/v1/me/").status_code in (401, 403)


def test_uploads_show_the_anonymous_name(client, alice):
    member_anonymise(member=alice, password=DEFAULT_PASSWORD)
    viewer = MemberFactory()
    client.force_login(viewer)
    torrent = Torrent.objects.get(name="alice-upload")
    page = client.get(f"/torrents/{torrent.pk}/").content.decode()
    assert f"deleted-{alice.pk}" in page and "alice@example.org" not in page
