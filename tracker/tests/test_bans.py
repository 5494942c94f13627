"""A ban removes every power at once, nobody lifts their own restriction, and staff actions on
staff need a higher rank (issue 14). Each test is an attack that used to work."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import NotPermitted
from tracker.models import Member, TorrentStatus
from tracker.services import members
from tracker.services.members import member_api_token
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members/"


def api_for(member: Member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def logged_in(member: Member) -> Client:
    client = Client()
    client.force_login(member)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def owner() -> Member:
    return MemberFactory(is_superuser=True)


@pytest.fixture
def rogue(owner) -> Member:
    """A moderator the owner has banned."""
    moderator = MemberFactory(is_staff=True, email="rogue@example.org")
    return members.member_ban(member=moderator, actor=owner, reason="abused staff powers")


# --- the API ----------------------------------------------------------------------------


def test_a_moderators_token_works_until_the_ban(owner):
    moderator = MemberFactory(is_staff=True)
    MemberFactory(username="victim", email="victim@example.org")
    client = api_for(moderator)
    assert client.get(MEMBERS).status_code == 200
    members.member_ban(member=moderator, actor=owner, reason="abused staff powers")
    response = client.get(MEMBERS)
    assert response.status_code == 403
    assert "victim@example.org" not in response.content.decode()
    assert "banned" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", MEMBERS, None),
        ("post", f"{MEMBERS}{{self}}/unban/", {}),
        ("post", f"{MEMBERS}{{other}}/ban/", {"reason": "revenge"}),
        ("post", f"{MEMBERS}{{member}}/unban/", {}),
        ("post", "/api/v1/torrents/{torrent}/moderate/", {"status": "deleted", "reason": "x"}),
        ("post", "/contract/update", {}),
        ("post", "/contract/register", {"username": "{member}"}),
    ],
)
def test_a_banned_moderators_token_has_no_staff_power(rogue, owner, method, path, data):
    other = MemberFactory(is_staff=True)
    member = members.member_ban(member=MemberFactory(), actor=owner, reason="cheating")
    torrent = upload_torrent(MemberFactory())
    names = {"self": rogue.username, "other": other.username, "member": member.username}
    names["torrent"] = str(torrent.pk)
    url = path.format(**names)
    body = {k: v.format(**names) for k, v in (data or {}).items()}
    response = getattr(api_for(rogue), method)(url, body, format="json")
    assert response.status_code == 403, response.content
    for someone in (rogue, other, member):
        someone.refresh_from_db()
    torrent.refresh_from_db()
    assert rogue.is_banned and not other.is_banned and member.is_banned
    assert torrent.status == TorrentStatus.APPROVED


def test_a_banned_moderators_session_on_the_api_is_ended(rogue):
    client = logged_in(rogue)
    response = client.get(MEMBERS)
    assert response.status_code == 403
    assert "abused staff powers" in response.json()["detail"]
    assert "_auth_user_id" not in client.session


# --- the admin --------------------------------------------------------------------------


def test_a_live_admin_session_ends_at_the_ban(owner):
    moderator = MemberFactory(is_staff=True)
    victim = MemberFactory()
    client = logged_in(moderator)
    change = reverse("admin:tracker_member_change", args=[victim.pk])
    assert client.get(change).status_code == 200
    members.member_ban(member=moderator, actor=owner, reason="abused staff powers")
    response = client.get(change)
    assert response.status_code == 403
    page = response.content.decode()
    assert "abused staff powers" in page and victim.passkey not in page
    assert "_auth_user_id" not in client.session
    # The session is gone: the next request is anonymous and goes to the login page.
    again = client.get(change)
    assert again.status_code == 302 and again["Location"].startswith(reverse("admin:login"))


def test_the_admin_site_refuses_a_banned_member_even_past_the_middleware(rogue):
    # The site's own rule, without relying on the session middleware.
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = rogue
    assert admin.site.has_permission(request) is False
    rogue.is_banned = False
    assert admin.site.has_permission(request) is True


def test_a_banned_moderator_cannot_log_into_the_admin(rogue):
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": rogue.username, "password": DEFAULT_PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 200
    assert "Your account is banned: abused staff powers" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_an_unbanned_moderator_logs_into_the_admin(owner, rogue):
    members.member_unban(member=rogue, actor=owner)
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": rogue.username, "password": DEFAULT_PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_banned_members_page_session_ends_too(owner):
    member = MemberFactory()
    client = logged_in(member)
    assert client.get(reverse("profile")).status_code == 200
    members.member_ban(member=member, actor=owner, reason="cheating")
    response = client.get(reverse("torrent_list"))
    assert response.status_code == 403 and "cheating" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- nobody lifts their own restriction ------------------------------------------------


def test_a_banned_moderator_cannot_unban_himself(rogue):
    with pytest.raises(NotPermitted, match="banned"):
        members.member_unban(member=rogue, actor=rogue)
    rogue.refresh_from_db()
    assert rogue.is_banned


@pytest.mark.parametrize(
    "change",
    [
        {"can_download": True},
        {"is_ratio_exempt": True},
        {"member_class": "vip"},
        {"is_banned": False, "ban_reason": ""},
    ],
)
def test_nobody_changes_their_own_standing(change):
    moderator = MemberFactory(is_staff=True)
    Member.objects.filter(pk=moderator.pk).update(can_download=False)
    moderator.refresh_from_db()
    with pytest.raises(NotPermitted, match="your own standing"):
        members.member_moderate(member=moderator, actor=moderator, action="x", **change)


def test_nobody_changes_their_own_standing_even_the_owner(owner):
    with pytest.raises(NotPermitted, match="your own standing"):
        members.member_moderate(member=owner, actor=owner, action="x", is_ratio_exempt=True)


def test_a_banned_moderator_moderates_nobody(rogue):
    member = MemberFactory()
    with pytest.raises(NotPermitted, match="banned"):
        members.member_ban(member=member, actor=rogue, reason="revenge")
    with pytest.raises(NotPermitted, match="banned"):
        members.passkey_reset(member=member, actor=rogue)
    member.refresh_from_db()
    assert not member.is_banned


# --- staff actions on staff need a higher rank ------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda m, a: members.member_ban(member=m, actor=a, reason="coup"),
        lambda m, a: members.member_unban(member=m, actor=a),
        lambda m, a: members.passkey_reset(member=m, actor=a),
        lambda m, a: members.member_set_downloading(member=m, actor=a, enabled=False),
        lambda m, a: members.member_moderate(member=m, actor=a, action="x", member_class="vip"),
    ],
    ids=["ban", "unban", "passkey", "downloading", "class"],
)
def test_a_moderator_cannot_act_on_another_moderator(action):
    moderator, other = MemberFactory(is_staff=True), MemberFactory(is_staff=True)
    passkey = other.passkey
    with pytest.raises(NotPermitted, match="Only a superuser can moderate a staff member"):
        action(other, moderator)
    other.refresh_from_db()
    assert not other.is_banned and other.can_download and other.passkey == passkey
    assert other.member_class == "user"


def test_a_moderator_banning_another_moderator_through_the_api_is_refused():
    moderator, other = MemberFactory(is_staff=True), MemberFactory(is_staff=True)
    response = api_for(moderator).post(
        f"{MEMBERS}{other.username}/ban/", {"reason": "coup"}, format="json"
    )
    assert response.status_code == 403
    assert "Only a superuser can moderate a staff member" in response.json()["detail"]
    other.refresh_from_db()
    assert not other.is_banned


def test_a_moderator_banning_another_moderator_in_the_admin_is_refused():
    moderator, other = MemberFactory(is_staff=True), MemberFactory(is_staff=True)
    client = logged_in(moderator)
    changelist = reverse("admin:tracker_member_changelist")
    response = client.post(
        changelist,
        {
            "action": "ban_members",
            "apply": "yes",
            "reason": "coup",
            ACTION_CHECKBOX_NAME: [str(other.pk)],
        },
    )
    assert any("may not change" in m for m in _messages(response))
    other.refresh_from_db()
    assert not other.is_banned
    # Nor through the change form: another moderator's page is read-only (an e-mail change
    # would let him reset the other's password).
    change = reverse("admin:tracker_member_change", args=[other.pk])
    page = client.get(change)
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(change, {"email": "mine@example.org"}).status_code == 403
    other.refresh_from_db()
    assert other.email != "mine@example.org"


def test_the_owner_moderates_moderators(owner):
    moderator = MemberFactory(is_staff=True)
    members.member_ban(member=moderator, actor=owner, reason="abused staff powers")
    moderator.refresh_from_db()
    assert moderator.is_banned
    members.member_unban(member=moderator, actor=owner)
    members.passkey_reset(member=moderator, actor=owner)
    response = api_for(owner).post(
        f"{MEMBERS}{moderator.username}/ban/", {"reason": "again"}, format="json"
    )
    assert response.status_code == 200 and response.json()["is_banned"] is True


def test_moderators_still_moderate_members():
    moderator, member = MemberFactory(is_staff=True), MemberFactory()
    members.member_ban(member=member, actor=moderator, reason="cheating")
    members.member_unban(member=member, actor=moderator)
    members.passkey_reset(member=member, actor=moderator)
    members.member_set_downloading(member=member, actor=moderator, enabled=False)
    assert members.may_moderate(actor=moderator, member=member)
    assert not members.may_moderate(actor=member, member=moderator)


def test_a_member_resets_their_own_passkey():
    member = MemberFactory()
    old = member.passkey
    assert members.passkey_reset(member=member, actor=member) != old
    assert members.passkey_reset(member=member) != old
