"""The server-rendered member pages: access, browse, torrents, invites, security, auth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from reputation.models import Ledger
from tracker import authcache
from tracker.models import Invite, Member, SitePage, Torrent, TorrentFile, TorrentStatus
from tracker.services import members
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import DEFAULT_PASSWORD, CategoryFactory, MemberFactory
from tracker.tests.torrents import make_torrent_bytes, upload_torrent
from tracker.views.accounts import ratio_label

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    """A logged-in ordinary member."""
    member = MemberFactory()
    client.force_login(member)
    return member


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


@pytest.fixture
def torrent(staff):
    return upload_torrent(staff, name="Some Linux ISO", size=300_000)


def _torrent_file(data: bytes, name: str = "upload.torrent") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/x-bittorrent")


def _page_urls(torrent: Torrent, other: Member) -> list[str]:
    return [
        reverse("home"),
        reverse("torrent_list"),
        reverse("torrent_detail", args=[torrent.pk]),
        reverse("torrent_upload"),
        reverse("profile"),
        reverse("security"),
        reverse("member_detail", args=[other.username]),
        reverse("invite_list"),
        reverse("site_page", args=["rules"]),
        reverse("password_change"),
    ]


# --- Access ---------------------------------------------------------------------------------


def test_every_member_page_renders_for_a_member(client, member, torrent, staff):
    SitePage.objects.create(slug="rules", title="Rules", body="Be nice.")
    for url in _page_urls(torrent, staff):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<nav" in response.content, url


def test_anonymous_visitors_are_sent_to_login(client, torrent, staff):
    SitePage.objects.create(slug="rules", title="Rules", body="Be nice.")
    urls = [*_page_urls(torrent, staff), reverse("torrent_download", args=[torrent.pk])]
    login_url = reverse("login")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{login_url}?next="), url


@pytest.mark.parametrize("name", ["login", "register", "password_reset"])
def test_public_pages_render_for_anonymous_visitors(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_nav_shows_admin_link_to_staff_only(client, member, staff):
    admin_url = reverse("admin:index").encode()
    assert admin_url not in client.get(reverse("home")).content
    client.force_login(staff)
    assert admin_url in client.get(reverse("home")).content


def test_banned_member_with_open_session_is_logged_out(client, member, staff):
    members.member_ban(member=member, actor=staff, reason="ratio cheating")
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "Your account is banned: ratio cheating" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post(client, member):
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


# --- Home and site pages --------------------------------------------------------------------


def test_home_lists_latest_ten_approved_torrents(client, member, staff):
    for i in range(12):
        upload_torrent(staff, name=f"Release {i:02d}")
    rejected = upload_torrent(staff, name="Hidden release")
    torrent_moderate(torrent=rejected, actor=staff, status=TorrentStatus.REJECTED, reason="dupe")
    response = client.get(reverse("home"))
    latest = list(response.context["latest"])
    assert len(latest) == 10
    assert latest[0].name == "Release 11"
    assert "Hidden release" not in response.content.decode()


def test_site_page_renders_markdown_safely(client, member):
    SitePage.objects.create(
        slug="faq", title="FAQ", body="# Questions\n\n**bold** <script>alert(1)</script>"
    )
    response = client.get(reverse("site_page", args=["faq"]))
    body = response.content.decode()
    assert "<strong>bold</strong>" in body
    assert "<script>alert" not in body


def test_missing_site_page_is_404(client, member):
    assert client.get(reverse("site_page", args=["nope"])).status_code == 404


# --- Browse ---------------------------------------------------------------------------------


def _names(response) -> list[str]:
    return [t.name for t in response.context["page"].object_list]


def test_browse_searches_all_name_words(client, member, staff):
    upload_torrent(staff, name="Debian 12 netinst amd64")
    upload_torrent(staff, name="Debian 11 netinst i386")
    upload_torrent(staff, name="Fedora 40 amd64")
    response = client.get(reverse("torrent_list"), {"q": "debian AMD64"})
    assert _names(response) == ["Debian 12 netinst amd64"]


def test_browse_filters_by_category(client, member, staff):
    movies = CategoryFactory(name="Movies", slug="movies")
    music = CategoryFactory(name="Music", slug="music")
    upload_torrent(staff, name="A film", category=movies)
    upload_torrent(staff, name="An album", category=music)
    response = client.get(reverse("torrent_list"), {"category": "music"})
    assert _names(response) == ["An album"]
    assert b'<option value="music" selected>Music</option>' in response.content


def test_browse_hides_unapproved_torrents(client, member, staff):
    upload_torrent(staff, name="Visible")
    hidden = upload_torrent(staff, name="Rejected one")
    torrent_moderate(torrent=hidden, actor=staff, status=TorrentStatus.REJECTED, reason="bad")
    assert _names(client.get(reverse("torrent_list"))) == ["Visible"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("date", ["Charlie", "Bravo", "Alpha"]),
        ("name", ["Alpha", "Bravo", "Charlie"]),
        ("size", ["Bravo", "Alpha", "Charlie"]),
        ("seeders", ["Alpha", "Charlie", "Bravo"]),
    ],
)
def test_browse_sorts(client, member, staff, sort, expected):
    alpha = upload_torrent(staff, name="Alpha", size=200_000)
    bravo = upload_torrent(staff, name="Bravo", size=900_000)
    charlie = upload_torrent(staff, name="Charlie", size=50_000)
    for torrent, seeders in ((alpha, 9), (bravo, 1), (charlie, 5)):
        Torrent.objects.filter(pk=torrent.pk).update(seeders=seeders)
    assert _names(client.get(reverse("torrent_list"), {"sort": sort})) == expected


def test_browse_ignores_unknown_sort_and_category(client, member, staff):
    upload_torrent(staff, name="First")
    upload_torrent(staff, name="Second")
    response = client.get(reverse("torrent_list"), {"sort": "evil"})
    assert response.status_code == 200
    assert _names(response) == ["Second", "First"]
    # An unknown category is a filter like any other: it matches nothing (as in the API).
    response = client.get(reverse("torrent_list"), {"sort": "evil", "category": "nope"})
    assert response.status_code == 200
    assert _names(response) == []


def test_browse_paginates_fifty_per_page_keeping_filters(client, member, staff):
    for i in range(51):
        upload_torrent(staff, name=f"Pack {i:02d}", size=10_000 + i)
    first = client.get(reverse("torrent_list"), {"q": "pack", "sort": "name"})
    assert len(first.context["page"].object_list) == 50
    assert first.context["page"].paginator.num_pages == 2
    assert "?q=pack&amp;sort=name&amp;page=2" in first.content.decode()
    second = client.get(reverse("torrent_list"), {"q": "pack", "sort": "name", "page": 2})
    assert _names(second) == ["Pack 50"]
    # Out-of-range and junk page numbers fall back to a real page instead of failing.
    assert _names(client.get(reverse("torrent_list"), {"sort": "name", "page": 99})) == ["Pack 50"]
    assert client.get(reverse("torrent_list"), {"page": "x"}).status_code == 200


@pytest.mark.parametrize("count", [3, 30])
def test_browse_query_count_does_not_grow_with_rows(
    client, member, staff, count, django_assert_num_queries
):
    category = CategoryFactory()
    for i in range(count):
        upload_torrent(staff, name=f"Item {i}", category=category if i % 2 else None)
    # Session, member, count, page rows, their tags, the member's bookmarks among them, the
    # header's unread notifications, categories.
    with django_assert_num_queries(8):
        response = client.get(reverse("torrent_list"), {"sort": "seeders"})
    assert len(response.context["page"].object_list) == count


# --- Torrent detail -------------------------------------------------------------------------


def test_detail_shows_facts_and_files(client, member, staff):
    torrent = upload_torrent(
        staff,
        name="Album",
        files=[("Album/01 intro.flac", 40_000), ("Album/02 song.flac", 70_000)],
    )
    body = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert "Album/01 intro.flac" in body and "Album/02 song.flac" in body
    assert torrent.info_hash in body
    assert reverse("torrent_download", args=[torrent.pk]) in body
    assert reverse("member_detail", args=[staff.username]) in body
    assert "Freeleech" not in body


def test_detail_shows_promotion_badges(client, member, torrent):
    Torrent.objects.filter(pk=torrent.pk).update(is_freeleech=True, is_double_upload=True)
    body = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert "Freeleech" in body and "Double upload" in body


def test_description_markdown_is_rendered_without_scripts(client, member, staff):
    torrent = upload_torrent(
        staff,
        description="Some *emphasis*\n\n<script>alert('xss')</script>\n\n"
        "[x](javascript:alert(1)) <img src=x onerror=alert(2)>",
    )
    body = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert "<em>emphasis</em>" in body
    assert "<script>alert" not in body
    assert "javascript:" not in body
    assert "onerror" not in body


def test_rejected_torrent_of_another_member_is_404(client, member, staff):
    torrent = upload_torrent(staff)
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.REJECTED, reason="dupe")
    assert client.get(reverse("torrent_detail", args=[torrent.pk])).status_code == 404
    assert client.get(reverse("torrent_download", args=[torrent.pk])).status_code == 404


def test_own_rejected_torrent_shows_banner_with_reason(client, member, staff):
    torrent = upload_torrent(member)
    torrent_moderate(
        torrent=torrent, actor=staff, status=TorrentStatus.REJECTED, reason="Wrong category"
    )
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Rejected." in body and "Wrong category" in body


def test_pending_torrent_banner_for_uploader_and_staff_only(client, member, staff, settings):
    settings.PBTS_UPLOADS_NEED_APPROVAL = True
    torrent = upload_torrent(staff)
    url = reverse("torrent_detail", args=[torrent.pk])
    assert client.get(url).status_code == 404
    client.force_login(staff)
    assert "Pending approval." in client.get(url).content.decode()


def test_unknown_torrent_is_404(client, member):
    assert client.get(reverse("torrent_detail", args=[999_999])).status_code == 404


# --- Download -------------------------------------------------------------------------------


def test_download_returns_torrent_with_member_passkey(client, member, torrent):
    response = client.get(reverse("torrent_download", args=[torrent.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-bittorrent"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert "Some Linux ISO.torrent" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    assert member.passkey.encode() in response.content
    assert response.content.startswith(b"d")


def test_download_refused_when_downloading_disabled(client, member, staff, torrent):
    members.member_set_downloading(member=member, actor=staff, enabled=False)
    response = client.get(reverse("torrent_download", args=[torrent.pk]))
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "Your downloading is disabled." in response.content.decode()
    assert member.passkey.encode() not in response.content


def test_download_refused_for_banned_member(client, member, staff, torrent):
    members.member_ban(member=member, actor=staff, reason="cheating")
    response = client.get(reverse("torrent_download", args=[torrent.pk]))
    assert response.status_code == 403
    assert "Your account is banned: cheating" in response.content.decode()
    assert member.passkey.encode() not in response.content


# --- Upload ---------------------------------------------------------------------------------


def test_upload_creates_torrent_and_tells_to_download_the_rewrite(client, member):
    category = CategoryFactory(name="Software", slug="software")
    response = client.post(
        reverse("torrent_upload"),
        {
            "file": _torrent_file(make_torrent_bytes(name="tool.tar.gz", size=123_456)),
            "name": "",
            "category": category.pk,
            "description": "The **tool**.",
        },
        follow=True,
    )
    torrent = Torrent.objects.get()
    assert response.redirect_chain == [(reverse("torrent_detail", args=[torrent.pk]), 302)]
    assert torrent.name == "tool.tar.gz"
    assert torrent.uploader == member and torrent.category == category
    assert torrent.size == 123_456
    body = response.content.decode()
    assert "Download the rewritten .torrent" in body
    assert "info_hash changed" in body


def _assert_upload_refused(client, data: bytes, expected: str) -> None:
    before = (Torrent.objects.count(), TorrentFile.objects.count())
    response = client.post(
        reverse("torrent_upload"),
        {"file": _torrent_file(data), "category": CategoryFactory().pk},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "file" in errors, errors
    assert expected in " ".join(errors["file"])
    assert (Torrent.objects.count(), TorrentFile.objects.count()) == before


def test_upload_of_malformed_bytes_is_a_form_error(client, member):
    _assert_upload_refused(client, b"this is not bencode", "not a valid torrent")


def test_upload_of_v2_only_torrent_is_a_form_error(client, member):
    _assert_upload_refused(client, make_torrent_bytes(v2_only=True), "v2-only")


def test_upload_of_oversize_file_is_a_form_error(client, member, settings):
    settings.PBTS_MAX_TORRENT_BYTES = 200
    _assert_upload_refused(client, make_torrent_bytes(size=10_000_000), "too large")


def test_upload_of_duplicate_is_a_form_error(client, member):
    data = make_torrent_bytes()
    first = {"file": _torrent_file(data), "category": CategoryFactory().pk}
    assert client.post(reverse("torrent_upload"), first).status_code == 302
    _assert_upload_refused(client, data, "already on the site")


def test_upload_without_category_is_a_form_error(client, member):
    response = client.post(reverse("torrent_upload"), {"file": _torrent_file(b"d4:infodee")})
    assert "category" in response.context["form"].errors
    assert not Torrent.objects.exists()


# --- Profiles -------------------------------------------------------------------------------


def test_own_profile_shows_announce_url_and_figures(client, member):
    Ledger.objects.filter(member=member).update(uploaded=3 * 1024**3, downloaded=2 * 1024**3)
    body = client.get(reverse("profile")).content.decode()
    assert f"/announce/{member.passkey}" in body
    assert "3.00 GiB" in body and "2.00 GiB" in body
    assert "1.50" in body


def test_other_profile_hides_passkey_and_private_fields(client, member):
    other = MemberFactory(email="secret@example.org")
    body = client.get(reverse("member_detail", args=[other.username])).content.decode()
    assert other.username in body
    assert other.passkey not in body
    assert member.passkey not in body
    assert "secret@example.org" not in body
    assert "Staff view" not in body


def test_staff_see_more_on_profiles(client, staff):
    other = MemberFactory(email="secret@example.org")
    client.force_login(staff)
    members.member_set_downloading(member=other, actor=staff, enabled=False)
    body = client.get(reverse("member_detail", args=[other.username])).content.decode()
    assert "Staff view" in body
    assert "secret@example.org" in body
    assert "Disabled" in body
    assert other.passkey not in body


def test_own_member_page_redirects_to_profile(client, member):
    response = client.get(reverse("member_detail", args=[member.username]))
    assert response.status_code == 302
    assert response["Location"] == reverse("profile")


def test_profile_shows_inviter(client, staff):
    invite = members.invite_create(inviter=staff)
    newbie = members.member_register(
        invite_code=invite.code, username="newbie", email="n@example.org", password=DEFAULT_PASSWORD
    )
    client.force_login(newbie)
    assert (
        reverse("member_detail", args=[staff.username])
        in client.get(reverse("profile")).content.decode()
    )


def test_unknown_member_is_404(client, member):
    assert client.get(reverse("member_detail", args=["nobody-here"])).status_code == 404


@pytest.mark.parametrize(
    ("uploaded", "downloaded", "label"),
    [(0, 0, "—"), (5, 0, "∞"), (1, 4, "0.25"), (3, 2, "1.50")],
)
def test_ratio_label(uploaded, downloaded, label):
    assert ratio_label(uploaded, downloaded) == label


# --- Invites --------------------------------------------------------------------------------


def test_staff_creates_invite_and_sees_its_link(client, staff):
    client.force_login(staff)
    response = client.post(reverse("invite_list"), {"email": "friend@example.org"}, follow=True)
    invite = Invite.objects.get(inviter=staff)
    body = response.content.decode()
    assert f"/register/?invite={invite.code}" in body
    assert "friend@example.org" in body
    assert "Active" in body


def test_member_without_invites_gets_a_form_error(client, member):
    response = client.post(reverse("invite_list"), {"email": ""})
    assert response.status_code == 200
    assert "You have no invites left." in response.content.decode()
    assert not Invite.objects.exists()


def test_member_spends_an_invite(client, member):
    Member.objects.filter(pk=member.pk).update(invites_left=1)
    assert client.post(reverse("invite_list"), {}).status_code == 302
    assert Invite.objects.filter(inviter=member).count() == 1
    member.refresh_from_db()
    assert member.invites_left == 0


def test_revoke_invite(client, staff):
    client.force_login(staff)
    invite = members.invite_create(inviter=staff)
    response = client.post(reverse("invite_revoke", args=[invite.pk]), follow=True)
    invite.refresh_from_db()
    assert invite.is_revoked
    assert "Invite revoked." in response.content.decode()


def test_cannot_revoke_someone_elses_invite(client, member, staff):
    invite = members.invite_create(inviter=staff)
    response = client.post(reverse("invite_revoke", args=[invite.pk]), follow=True)
    invite.refresh_from_db()
    assert not invite.is_revoked
    assert "You cannot revoke this invite." in response.content.decode()


def test_invites_page_lists_invitees_and_used_invites(client, staff):
    invite = members.invite_create(inviter=staff)
    members.member_register(
        invite_code=invite.code, username="invitee1", email="", password=DEFAULT_PASSWORD
    )
    client.force_login(staff)
    response = client.get(reverse("invite_list"))
    body = response.content.decode()
    assert [m.username for m in response.context["invitees"]] == ["invitee1"]
    assert "Used" in body
    assert f"?invite={invite.code}" not in body  # a used invite has no link any more


# --- Security -------------------------------------------------------------------------------


def test_passkey_reset_changes_passkey_and_forgets_the_old_one(client, member):
    old = member.passkey
    assert authcache.member_standing(old) is not None
    response = client.post(reverse("passkey_reset"), {"passkey-confirm": "on"}, follow=True)
    member.refresh_from_db()
    assert member.passkey != old
    assert authcache.member_standing(old) is None
    assert authcache.member_standing(member.passkey).member_id == member.pk
    body = response.content.decode()
    assert f"/announce/{member.passkey}" in body
    assert "Your passkey was reset." in body


def test_passkey_reset_needs_confirmation(client, member):
    old = member.passkey
    response = client.post(reverse("passkey_reset"), {})
    assert response.status_code == 200
    assert "Tick the box to confirm." in response.content.decode()
    member.refresh_from_db()
    assert member.passkey == old


def test_passkey_reset_is_post_only(client, member):
    old = member.passkey
    assert client.get(reverse("passkey_reset")).status_code == 405
    member.refresh_from_db()
    assert member.passkey == old


def test_security_page_shows_own_api_token_and_resets_it(client, member):
    old = Token.objects.get(user=member).key
    assert old in client.get(reverse("security")).content.decode()
    response = client.post(reverse("api_token_reset"), {"token-confirm": "on"}, follow=True)
    new = Token.objects.get(user=member).key
    assert new != old
    body = response.content.decode()
    assert new in body and old not in body


# --- Registration ---------------------------------------------------------------------------


def _register_data(code: str, **overrides: str) -> dict[str, str]:
    return {
        "invite_code": code,
        "username": "newcomer",
        "email": "newcomer@example.org",
        "password": DEFAULT_PASSWORD,
        "password_confirm": DEFAULT_PASSWORD,
        **overrides,
    }


def test_register_prefills_invite_code(client):
    response = client.get(reverse("register"), {"invite": "abc123"})
    assert response.context["form"]["invite_code"].value() == "abc123"


def test_register_with_valid_invite_creates_member_and_logs_in(client, staff):
    invite = members.invite_create(inviter=staff)
    response = client.post(reverse("register"), _register_data(invite.code))
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    newcomer = Member.objects.get(username="newcomer")
    assert newcomer.invited_by == staff
    assert int(client.session["_auth_user_id"]) == newcomer.pk
    invite.refresh_from_db()
    assert invite.used_by == newcomer


def _assert_register_refused(client, data: dict[str, str], field: str, expected: str) -> None:
    before = Member.objects.count()
    response = client.post(reverse("register"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert expected in " ".join(errors[field])
    assert Member.objects.count() == before
    assert "_auth_user_id" not in client.session


def test_register_with_wrong_invite_is_refused(client):
    _assert_register_refused(client, _register_data("no-such-code"), "invite_code", "not valid")


def test_register_with_expired_invite_is_refused(client, staff):
    invite = members.invite_create(inviter=staff)
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    _assert_register_refused(client, _register_data(invite.code), "invite_code", "expired")


def test_register_with_used_invite_is_refused(client, staff):
    invite = members.invite_create(inviter=staff)
    members.member_register(
        invite_code=invite.code, username="first", email="", password=DEFAULT_PASSWORD
    )
    _assert_register_refused(
        client, _register_data(invite.code), "invite_code", "already been used"
    )


def test_register_with_taken_username_or_bad_password_is_refused(client, staff):
    invite = members.invite_create(inviter=staff)
    _assert_register_refused(
        client, _register_data(invite.code, username=staff.username.upper()), "username", "taken"
    )
    _assert_register_refused(
        client,
        _register_data(invite.code, password="123", password_confirm="123"),
        "password",
        "too short",
    )
    _assert_register_refused(
        client, _register_data(invite.code, password_confirm="other"), "password_confirm", "differ"
    )
    invite.refresh_from_db()
    assert invite.used_by is None


def test_logged_in_member_is_redirected_from_register(client, member):
    response = client.get(reverse("register"))
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


# --- Login and passwords --------------------------------------------------------------------


def test_login_works_and_redirects_home(client):
    member = MemberFactory()
    response = client.post(
        reverse("login"), {"username": member.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert int(client.session["_auth_user_id"]) == member.pk


def test_banned_member_cannot_log_in(client, staff):
    member = MemberFactory()
    members.member_ban(member=member, actor=staff, reason="sharing the passkey")
    response = client.post(
        reverse("login"), {"username": member.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    assert "Your account is banned: sharing the passkey" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_change(client, member):
    response = client.post(
        reverse("password_change"),
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password1": "another long passphrase 77",
            "new_password2": "another long passphrase 77",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    member.refresh_from_db()
    assert member.check_password("another long passphrase 77")


def test_password_reset_sends_a_working_link(client):
    member = MemberFactory(email="me@example.org")
    response = client.post(reverse("password_reset"), {"email": "me@example.org"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    link = next(line for line in message.body.splitlines() if "/password/reset/" in line)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"]
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand new passphrase 88", "new_password2": "brand new passphrase 88"},
    )
    assert done["Location"] == reverse("password_reset_complete")
    member.refresh_from_db()
    assert member.check_password("brand new passphrase 88")


@pytest.mark.parametrize("given", ["NoPass", "nopass@example.org", "NOPASS@EXAMPLE.ORG"])
def test_password_reset_mails_a_member_without_a_password_by_name_or_address(client, given):
    # createmember's members have no usable password; Django's own form would send nothing.
    member = members.member_create(username="nopass", email="nopass@example.org")
    assert not member.has_usable_password()
    response = client.post(reverse("password_reset"), {"email": given})
    assert response["Location"] == reverse("password_reset_done")
    assert [m.to for m in mail.outbox] == [["nopass@example.org"]]
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password/reset/" in line)
    form_page = client.get(link.split("testserver", 1)[1], follow=True)
    assert form_page.context["validlink"]
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "chosen passphrase 31", "new_password2": "chosen passphrase 31"},
    )
    assert client.login(username="nopass", password="chosen passphrase 31")


@pytest.mark.parametrize("case", ["unknown", "banned", "inactive", "no address"])
def test_password_reset_sends_nothing_it_must_not_and_says_the_same(client, case):
    member = MemberFactory(username="someone", email="someone@example.org")
    if case == "banned":
        member.is_banned, member.ban_reason = True, "cheating"
    elif case == "inactive":
        member.is_active = False
    elif case == "no address":
        member.email = ""
    member.save()
    given = "nobody" if case == "unknown" else "someone"
    response = client.post(reverse("password_reset"), {"email": given})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_login_and_reset_pages_show_the_site_name_not_the_host(client, settings):
    settings.PBTS_SITE_NAME = "Example Tracker"
    for name in ("login", "password_reset", "register"):
        page = client.get(reverse(name)).content.decode()
        assert '<a class="brand" href="/">Example Tracker</a>' in page, name
        assert "· Example Tracker</title>" in page, name
        assert "testserver" not in page, name


# --- Issue 11: what a new member met -------------------------------------------------------


def test_browse_sorts_names_case_insensitively(client, member, staff):
    for name in ("banana", "Apple", "cherry", "Banana.2"):
        upload_torrent(staff, name=name)
    names = _names(client.get(reverse("torrent_list"), {"sort": "name"}))
    assert names == ["Apple", "banana", "Banana.2", "cherry"]


@pytest.mark.parametrize("status", [TorrentStatus.REJECTED, TorrentStatus.DELETED])
def test_own_rejected_or_deleted_torrent_cannot_be_downloaded(client, member, staff, status):
    torrent = upload_torrent(member)
    torrent_moderate(torrent=torrent, actor=staff, status=status, reason="Wrong category")
    page = client.get(reverse("torrent_detail", args=[torrent.pk]))
    download_url = reverse("torrent_download", args=[torrent.pk])
    if status == TorrentStatus.REJECTED:  # the uploader still sees the page and the reason
        assert page.status_code == 200
        assert download_url not in page.content.decode()
        refused = client.get(download_url)
        assert refused.status_code == 403
        assert f"This torrent was {status}" in refused.content.decode()
    else:
        assert page.status_code == 404 and client.get(download_url).status_code == 404
    # Staff, who see every torrent, cannot download it either.
    client.force_login(staff)
    assert client.get(download_url).status_code == 403


def test_own_pending_torrent_can_be_downloaded_to_seed(client, member, settings):
    settings.PBTS_UPLOADS_NEED_APPROVAL = True
    torrent = upload_torrent(member)
    download_url = reverse("torrent_download", args=[torrent.pk])
    assert download_url in client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert client.get(download_url).status_code == 200


def test_registration_welcomes_once(client):
    inviter = MemberFactory(is_staff=True)
    invite = members.invite_create(inviter=inviter)
    response = client.post(
        reverse("register"),
        {
            "invite_code": invite.code,
            "username": "newbie",
            "email": "newbie@example.org",
            "password": "a fine pass phrase 5",
            "password_confirm": "a fine pass phrase 5",
        },
        follow=True,
    )
    body = response.content.decode()
    assert "Welcome, newbie!" in body
    assert "Welcome back" not in body
    assert "Welcome back" in client.get(reverse("home")).content.decode()


def test_invite_form_is_offered_only_with_invites_left(client, member):
    page = client.get(reverse("invite_list")).content.decode()
    assert member.invites_left == 0
    assert "You have no invites left" in page
    assert '<button type="button" disabled' in page and '<button type="submit">Create' not in page
    Member.objects.filter(pk=member.pk).update(invites_left=1)
    page = client.get(reverse("invite_list")).content.decode()
    assert '<button type="submit">Create invite</button>' in page


@pytest.mark.parametrize(
    "url",
    [
        "/chain/migration",
        "/chain/migration/1/sign",
        "/profile/security/passkey/",
        "/profile/security/api-token/",
        "/invites/1/revoke/",
    ],
)
def test_form_endpoints_answer_a_get_with_a_readable_405(client, member, url):
    response = client.get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "open the page instead" in response.content.decode()


def test_favicon_is_served(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)


def test_markdown_drops_an_unsafe_link_but_keeps_its_text(client, member, staff):
    torrent = upload_torrent(staff, description="[click me](javascript:alert(1)) and more")
    body = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert '<a rel="noopener noreferrer">click me</a> and more' in body
    assert "click me)" not in body and "javascript" not in body


def test_api_docs_load_swagger_ui_from_this_site(client, member):
    page = client.get("/api/docs/").content.decode()
    assert "cdn." not in page and "jsdelivr" not in page and "unpkg" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert (
        client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        ).status_code
        == 200
    )
