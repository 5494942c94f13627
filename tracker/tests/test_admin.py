"""Admin: who gets in, and moderation going through the services (audited, cache invalidated)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.audit import audit_record
from core.models import AuditLog
from core.notifications import notify
from reputation.models import Ledger
from reputation.services import bonus_credit_earned
from tracker import authcache
from tracker.models import (
    Category,
    ClientPrefix,
    HitAndRun,
    Invite,
    Member,
    SitePage,
    StatsFlush,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services import members
from tracker.services.browse import bookmark_set, feed_key_get, torrent_tags_set
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

OUR_APPS = ("tracker", "reputation")
REGISTERED = sorted(
    (model._meta.app_label, model._meta.model_name)
    for model in admin.site._registry
    if model._meta.app_label in OUR_APPS
)


def _url(model: type | tuple[str, str], view: str, *args: Any) -> str:
    app, name = (
        model if isinstance(model, tuple) else (model._meta.app_label, model._meta.model_name)
    )
    return reverse(f"admin:{app}_{name}_{view}", args=args)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(client: Client, model: type, action: str, objs: list, **extra: str):
    """The first POST of an action, as the change list's action bar sends it."""
    data = {"action": action, "index": "0", ACTION_CHECKBOX_NAME: [str(o.pk) for o in objs]}
    return client.post(_url(model, "changelist"), {**data, **extra})


def _confirm(client: Client, model: type, action: str, objs: list, reason: str):
    """The POST of an intermediate (reason) page."""
    data = {
        "action": action,
        "apply": "yes",
        "reason": reason,
        ACTION_CHECKBOX_NAME: [str(o.pk) for o in objs],
    }
    return client.post(_url(model, "changelist"), data)


def _form_values(form, data: dict[str, Any]) -> None:
    for name in form.fields:
        value = form[name].value()
        key = form.add_prefix(name)
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif value is None:
            data[key] = ""
        elif isinstance(value, list | tuple):
            data[key] = list(value)
        else:
            data[key] = value


def _form_data(response) -> dict[str, Any]:
    """POST data reproducing the change form (and its inlines) of a GET response, unchanged."""
    data: dict[str, Any] = {}
    _form_values(response.context["adminform"].form, data)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        _form_values(formset.management_form, data)
        for form in formset.forms:
            _form_values(form, data)
    return data


@pytest.fixture
def staff() -> Member:
    return MemberFactory(is_staff=True)


@pytest.fixture
def staff_client(staff: Member) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def torrent(staff: Member) -> Torrent:
    return upload_torrent(MemberFactory(), name="Some.Release.2024")


# --- access ---------------------------------------------------------------------------------


def test_every_model_of_ours_is_registered():
    for model in (Member, Invite, Category, Torrent, ClientPrefix, SitePage, AuditLog, Ledger):
        assert admin.site.is_registered(model), model


def test_api_tokens_are_not_in_admin():
    assert not any(m._meta.model_name in ("token", "tokenproxy") for m in admin.site._registry)


@pytest.mark.parametrize("model", REGISTERED)
def test_changelist_loads_for_staff_and_superuser(model, staff, staff_client, admin_client):
    _add_rows(staff)
    model_class = apps.get_model(*model)
    expected = min(model_class._default_manager.count(), 100)
    assert expected >= 1, model  # every changelist has a row to show
    for client in (staff_client, admin_client):
        response = client.get(_url(model, "changelist"))
        assert response.status_code == 200
        listed = response.context["cl"].result_list
        assert len(listed) == expected, model
        assert all(isinstance(row, model_class) for row in listed)


def _add_rows(staff: Member) -> None:
    """One more row in every table the admin lists."""
    member = MemberFactory()
    torrent = upload_torrent(member, files=[("a/1.bin", 5000), ("a/2.bin", 7000)])
    members.invite_create(inviter=staff)
    audit_record(actor=MemberFactory(is_staff=True), action="test", target=member)
    Category.objects.create(name=f"Cat {member.pk}", slug=f"cat-{member.pk}")
    ClientPrefix.objects.create(prefix=f"-X{member.pk}", name="x")
    SitePage.objects.create(slug=f"p{member.pk}", title="t", body="b")
    history = TorrentHistory.objects.create(member=member, torrent=torrent, uploaded=1)
    HitAndRun.objects.create(history=history, member=member)
    StatsFlush.objects.create(batch_id=f"batch-{member.pk}", members=1, torrents=1)
    bonus_credit_earned(amounts={member.pk: 1000}, reference="test")  # account + transaction
    notify(member=member, kind="test", subject="A notification")
    torrent_tags_set(torrent=torrent, actor=member, tags=[f"tag-{member.pk}"])  # Tag
    bookmark_set(member=member, torrent=torrent, bookmarked=True)
    feed_key_get(member=member)


@pytest.mark.parametrize("model", REGISTERED)
def test_changelist_queries_do_not_grow_with_rows(model, staff, staff_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _add_rows(staff)
    url = _url(model, "changelist")
    with CaptureQueriesContext(connection) as few:
        assert staff_client.get(url).status_code == 200
    for _ in range(3):
        _add_rows(staff)
    with CaptureQueriesContext(connection) as many:
        assert staff_client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize("model", REGISTERED)
def test_changelist_redirects_non_staff_to_login(model, client):
    client.force_login(MemberFactory())
    response = client.get(_url(model, "changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    anonymous = Client().get(_url(model, "changelist"))
    assert anonymous.status_code == 302 and reverse("admin:login") in anonymous["Location"]


def test_member_changelist_shows_ledger_without_a_query_per_row(
    staff_client, django_assert_max_num_queries
):
    for i in range(5):
        member = MemberFactory()
        Ledger.objects.filter(member=member).update(uploaded=(i + 1) * 1024**3)
    with django_assert_max_num_queries(12):
        response = staff_client.get(_url(Member, "changelist"))
    assert response.status_code == 200
    assert "5.0\xa0GB" in response.content.decode()


def test_member_search_by_passkey(staff_client):
    target, other = MemberFactory(), MemberFactory()
    response = staff_client.get(_url(Member, "changelist"), {"q": target.passkey})
    listed = list(response.context["cl"].result_list)
    assert listed == [target] and other not in listed


def test_member_change_page_hides_password_hash_and_token(staff_client):
    member = MemberFactory()
    response = staff_client.get(_url(Member, "change", member.pk))
    html = response.content.decode()
    assert response.status_code == 200
    assert member.password not in html and "pbkdf2" not in html and "md5$" not in html
    assert Token.objects.get(user=member).key not in html
    assert member.passkey in html  # shown, read-only
    assert "passkey" not in response.context["adminform"].form.fields


def test_member_change_page_offers_superusers_the_set_password_link(staff_client):
    superuser = MemberFactory(is_staff=True, is_superuser=True)
    owner = Client()
    owner.force_login(superuser)
    member = members.member_create(username="nopassword")  # as createmember makes them
    page = owner.get(_url(Member, "change", member.pk)).content.decode()
    assert 'href="../password/"' in page and "Set password" in page
    password_url = reverse("admin:auth_user_password_change", args=[member.pk])
    done = owner.post(
        password_url,
        {
            "password1": "set by owner 2026",
            "password2": "set by owner 2026",
            "usable_password": "true",
        },
    )
    assert done.status_code == 302
    member.refresh_from_db()
    assert member.check_password("set by owner 2026")
    row = AuditLog.objects.get(action="password_set", target_id=str(member.pk))
    assert row.actor == superuser and "set by owner" not in str(row.new_values)
    # Other staff see no link they could not use.
    assert (
        'href="../password/"'
        not in staff_client.get(_url(Member, "change", member.pk)).content.decode()
    )


# --- member actions -------------------------------------------------------------------------


def test_ban_action_asks_for_a_reason_and_refuses_an_empty_one(staff_client):
    member = MemberFactory()
    first = _action(staff_client, Member, "ban_members", [member])
    assert first.status_code == 200
    assert "admin/core/action_reason.html" in [t.name for t in first.templates]
    empty = _confirm(staff_client, Member, "ban_members", [member], reason="   ")
    assert empty.status_code == 200
    assert empty.context["form"].errors["reason"]
    member.refresh_from_db()
    assert member.is_banned is False
    assert not AuditLog.objects.filter(action="member_ban").exists()


def test_ban_action_with_reason_bans_audits_and_invalidates_cache(staff, staff_client):
    member = MemberFactory()
    assert authcache.member_standing(member.passkey).is_banned is False  # cached now
    response = _confirm(staff_client, Member, "ban_members", [member], reason="ratio cheating")
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.is_banned and member.ban_reason == "ratio cheating"
    row = AuditLog.objects.get(action="member_ban")
    assert row.actor == staff and row.reason == "ratio cheating"
    assert row.old_values["is_banned"] is False and row.new_values["is_banned"] is True
    assert authcache.member_standing(member.passkey).is_banned is True
    assert "Banned 1 member(s)." in _messages(response)


def test_unban_action(staff_client, staff):
    member = members.member_ban(member=MemberFactory(), actor=staff, reason="x")
    _action(staff_client, Member, "unban_members", [member])
    member.refresh_from_db()
    assert member.is_banned is False and member.ban_reason == ""
    assert AuditLog.objects.filter(action="member_unban", target_id=str(member.pk)).exists()


def test_reset_passkey_action_makes_old_passkey_unknown(staff, staff_client):
    member = MemberFactory()
    old = member.passkey
    assert authcache.member_standing(old) is not None  # cached now
    response = _action(staff_client, Member, "reset_passkeys", [member])
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.passkey != old and len(member.passkey) == 32
    assert authcache.member_standing(old) is None
    assert authcache.member_standing(member.passkey).member_id == member.pk
    row = AuditLog.objects.get(action="passkey_reset")
    assert row.actor == staff and old not in str(row.old_values)


def test_disable_and_enable_downloading_actions(staff_client):
    member = MemberFactory()
    assert authcache.member_standing(member.passkey).can_download is True
    _action(staff_client, Member, "disable_downloading", [member])
    member.refresh_from_db()
    assert member.can_download is False
    assert authcache.member_standing(member.passkey).can_download is False
    _action(staff_client, Member, "enable_downloading", [member])
    member.refresh_from_db()
    assert member.can_download is True
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"downloading_disable", "downloading_enable"} <= actions


def test_action_refused_by_service_is_an_error_message_not_a_500(staff, staff_client):
    response = _confirm(staff_client, Member, "ban_members", [staff], reason="test")
    assert response.status_code == 302
    assert any("cannot ban yourself" in m for m in _messages(response))
    staff.refresh_from_db()
    assert staff.is_banned is False


def test_staff_cannot_act_on_a_superuser(staff_client, admin_user):
    old = admin_user.passkey
    response = _action(staff_client, Member, "reset_passkeys", [admin_user])
    admin_user.refresh_from_db()
    assert admin_user.passkey == old
    assert any("may not change" in m for m in _messages(response))


# --- member change form ---------------------------------------------------------------------


def test_change_form_can_download_goes_through_member_moderate(staff, staff_client):
    member = MemberFactory()
    assert authcache.member_standing(member.passkey).can_download is True
    url = _url(Member, "change", member.pk)
    data = _form_data(staff_client.get(url))
    data.pop("can_download")  # unticked
    response = staff_client.post(url, data)
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.can_download is False
    row = AuditLog.objects.get(action="member_moderate", target_id=str(member.pk))
    assert row.actor == staff
    assert row.old_values == {"can_download": True} and row.new_values == {"can_download": False}
    assert authcache.member_standing(member.passkey).can_download is False


def test_change_form_other_fields_are_audited_too(staff_client):
    member = MemberFactory(email="old@example.org")
    url = _url(Member, "change", member.pk)
    data = _form_data(staff_client.get(url))
    data["email"] = "new@example.org"
    data["member_class"] = "elite"
    assert staff_client.post(url, data).status_code == 302
    member.refresh_from_db()
    assert member.email == "new@example.org" and member.member_class == "elite"
    change = AuditLog.objects.get(action="member_change")
    assert change.old_values == {"email": "old@example.org"}
    assert change.new_values == {"email": "new@example.org"}
    moderate = AuditLog.objects.get(action="member_moderate")
    assert moderate.new_values == {"member_class": "elite"}


def test_change_form_ban_needs_a_reason(staff_client):
    member = MemberFactory()
    url = _url(Member, "change", member.pk)
    data = _form_data(staff_client.get(url))
    data["is_banned"] = "on"
    data["ban_reason"] = ""
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["ban_reason"]
    member.refresh_from_db()
    assert member.is_banned is False
    data["ban_reason"] = "sharing the account"
    assert staff_client.post(url, data).status_code == 302
    member.refresh_from_db()
    assert member.is_banned and member.ban_reason == "sharing the account"
    assert AuditLog.objects.get(action="member_ban").reason == "sharing the account"


def test_change_form_refused_by_service_shows_error_and_saves_nothing(staff, staff_client):
    url = _url(Member, "change", staff.pk)
    data = _form_data(staff_client.get(url))
    data.update(is_banned="on", ban_reason="me", first_name="Changed")
    response = staff_client.post(url, data)
    assert response.status_code == 302
    assert any("cannot ban yourself" in m for m in _messages(response))
    staff.refresh_from_db()
    assert staff.is_banned is False and staff.first_name == ""
    assert not AuditLog.objects.exists()


def test_only_superusers_grant_staff(staff_client, admin_client):
    member = MemberFactory()
    url = _url(Member, "change", member.pk)
    data = _form_data(staff_client.get(url))
    data["is_staff"] = "on"
    assert staff_client.post(url, data).status_code == 302
    member.refresh_from_db()
    assert member.is_staff is False
    data = _form_data(admin_client.get(url))
    data["is_staff"] = "on"
    assert admin_client.post(url, data).status_code == 302
    member.refresh_from_db()
    assert member.is_staff is True
    assert AuditLog.objects.get(action="member_change").new_values == {"is_staff": True}


def test_only_superusers_set_passwords_and_it_is_audited_masked(staff_client, admin_client):
    member = MemberFactory()
    url = reverse("admin:auth_user_password_change", args=[member.pk])
    data = {"password1": "a new Secret 12345", "password2": "a new Secret 12345"}
    assert staff_client.post(url, data).status_code == 403
    member.refresh_from_db()
    assert not member.check_password("a new Secret 12345")
    assert admin_client.post(url, {**data, "usable_password": "true"}).status_code == 302
    member.refresh_from_db()
    assert member.check_password("a new Secret 12345")
    row = AuditLog.objects.get(action="password_set", target_id=str(member.pk))
    assert "a new Secret" not in str(row.new_values) and member.password not in str(row.new_values)


def test_members_cannot_be_hard_deleted(admin_client):
    member = MemberFactory()
    assert admin_client.post(_url(Member, "delete", member.pk), {"post": "yes"}).status_code == 403
    assert Member.objects.filter(pk=member.pk).exists()


def test_add_member_creates_ledger_and_token(staff, staff_client):
    response = staff_client.post(
        _url(Member, "add"),
        {"username": "newcomer", "email": "new@example.org", "usable_password": "false"},
    )
    assert response.status_code == 302
    member = Member.objects.get(username="newcomer")
    assert Ledger.objects.filter(member=member).exists()
    assert Token.objects.filter(user=member).exists()
    assert not member.has_usable_password()
    assert AuditLog.objects.get(action="member_create").actor == staff


def test_add_member_refuses_a_taken_name_case_insensitively(staff_client):
    MemberFactory(username="alice")
    response = staff_client.post(
        _url(Member, "add"), {"username": "ALICE", "usable_password": "false"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"]
    assert Member.objects.filter(username__iexact="alice").count() == 1


# --- audit log and ledger are read-only -----------------------------------------------------


def test_audit_log_cannot_be_added_changed_or_deleted(admin_client, admin_user):
    row = audit_record(actor=admin_user, action="member_ban", target=admin_user, reason="x")
    assert admin_client.get(_url(AuditLog, "add")).status_code == 403
    assert admin_client.post(_url(AuditLog, "add"), {"action": "forged"}).status_code == 403
    change = admin_client.post(_url(AuditLog, "change", row.pk), {"action": "forged"})
    assert change.status_code == 403
    delete = admin_client.post(_url(AuditLog, "delete", row.pk), {"post": "yes"})
    assert delete.status_code == 403
    row.refresh_from_db()
    assert row.action == "member_ban"
    changelist = admin_client.get(_url(AuditLog, "changelist"))
    assert changelist.context["action_form"] is None  # no actions at all, not even delete
    bulk = admin_client.post(
        _url(AuditLog, "changelist"),
        {"action": "delete_selected", "index": "0", ACTION_CHECKBOX_NAME: [row.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditLog.objects.filter(pk=row.pk).exists()
    # The view page itself is readable.
    assert admin_client.get(_url(AuditLog, "change", row.pk)).status_code == 200


def test_audit_log_filters_by_action_and_actor(staff, staff_client):
    other = MemberFactory(is_staff=True)
    audit_record(actor=staff, action="member_ban", target=staff)
    audit_record(actor=other, action="torrent_rejected", target=other)
    by_action = staff_client.get(_url(AuditLog, "changelist"), {"action": "member_ban"})
    assert [r.action for r in by_action.context["cl"].result_list] == ["member_ban"]
    by_actor = staff_client.get(_url(AuditLog, "changelist"), {"actor__id__exact": other.pk})
    assert [r.actor for r in by_actor.context["cl"].result_list] == [other]


def test_ledger_is_read_only(admin_client):
    member = MemberFactory()
    Ledger.objects.filter(member=member).update(uploaded=10)
    url = _url(Ledger, "change", member.pk)
    assert admin_client.post(url, {"uploaded": "999999"}).status_code == 403
    assert admin_client.get(_url(Ledger, "add")).status_code == 403
    assert admin_client.post(_url(Ledger, "delete", member.pk), {"post": "yes"}).status_code == 403
    assert Ledger.objects.get(member=member).uploaded == 10


# --- torrents -------------------------------------------------------------------------------


def test_torrent_reject_needs_a_reason(staff, staff_client, torrent):
    empty = _confirm(staff_client, Torrent, "reject", [torrent], reason="")
    assert empty.status_code == 200 and empty.context["form"].errors["reason"]
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.APPROVED
    done = _confirm(staff_client, Torrent, "reject", [torrent], reason="duplicate")
    assert done.status_code == 302
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.REJECTED and torrent.moderation_reason == "duplicate"
    row = AuditLog.objects.get(action="torrent_rejected")
    assert row.actor == staff and row.reason == "duplicate"


def test_torrent_delete_is_soft_and_needs_a_reason(staff_client, torrent):
    assert authcache.torrent_standing(torrent.info_hash) is not None  # cached now
    first = _action(staff_client, Torrent, "soft_delete", [torrent])
    assert first.status_code == 200 and "reason" in first.context["form"].fields
    empty = _confirm(staff_client, Torrent, "soft_delete", [torrent], reason=" ")
    assert empty.status_code == 200 and empty.context["form"].errors["reason"]
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.APPROVED
    _confirm(staff_client, Torrent, "soft_delete", [torrent], reason="fake release")
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.DELETED and torrent.moderation_reason == "fake release"
    assert Torrent.objects.filter(pk=torrent.pk).exists()
    assert authcache.torrent_standing(torrent.info_hash) is None


def test_torrent_hard_delete_and_add_are_disabled(admin_client, torrent):
    assert (
        admin_client.post(_url(Torrent, "delete", torrent.pk), {"post": "yes"}).status_code == 403
    )
    assert admin_client.get(_url(Torrent, "add")).status_code == 403
    changelist = admin_client.get(_url(Torrent, "changelist"))
    choices = dict(changelist.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in choices and "soft_delete" in choices
    assert Torrent.objects.filter(pk=torrent.pk).exists()


def test_torrent_pending_and_approve_actions(staff_client, torrent):
    _action(staff_client, Torrent, "set_pending", [torrent])
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.PENDING
    _action(staff_client, Torrent, "approve", [torrent])
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.APPROVED
    assert AuditLog.objects.filter(action="torrent_pending").exists()
    assert AuditLog.objects.filter(action="torrent_approved").exists()


def test_freeleech_action_is_audited_and_reaches_the_tracker(staff, staff_client, torrent):
    Torrent.objects.filter(pk=torrent.pk).update(is_double_upload=True)
    assert authcache.torrent_standing(torrent.info_hash).is_freeleech is False  # cached now
    response = _action(staff_client, Torrent, "set_freeleech", [torrent])
    assert response.status_code == 302
    torrent.refresh_from_db()
    assert torrent.is_freeleech is True and torrent.is_double_upload is True  # kept
    row = AuditLog.objects.get(action="torrent_promotion")
    assert row.actor == staff
    assert row.old_values["is_freeleech"] is False and row.new_values["is_freeleech"] is True
    assert authcache.torrent_standing(torrent.info_hash).is_freeleech is True
    _action(staff_client, Torrent, "unset_double_upload", [torrent])
    torrent.refresh_from_db()
    assert torrent.is_freeleech is True and torrent.is_double_upload is False


def test_torrent_change_page_hides_metainfo_and_edits_go_through_the_service(
    staff, staff_client, torrent
):
    url = _url(Torrent, "change", torrent.pk)
    page = staff_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "metainfo" not in form.fields and "status" not in form.fields
    assert torrent.files.get().path in page.content.decode()  # the read-only files inline
    data = _form_data(page)
    data["name"] = "Better Name"
    data["category"] = CategoryFactory(slug="movies", name="Movies").pk
    assert staff_client.post(url, data).status_code == 302
    torrent.refresh_from_db()
    assert torrent.name == "Better Name" and torrent.category.slug == "movies"
    row = AuditLog.objects.get(action="torrent_update")
    assert row.actor == staff and row.new_values == {"name": "Better Name", "category": "movies"}


# --- categories, whitelist, pages, invites --------------------------------------------------


def test_category_edit_is_audited_with_old_and_new_values(staff, staff_client):
    category = Category.objects.create(name="Films", slug="films")
    url = _url(Category, "change", category.pk)
    data = _form_data(staff_client.get(url))
    data["name"] = "Movies"
    assert staff_client.post(url, data).status_code == 302
    row = AuditLog.objects.get(action="category_change")
    assert row.actor == staff
    assert row.old_values == {"name": "Films"} and row.new_values == {"name": "Movies"}


def test_client_prefix_edit_is_audited_and_reaches_the_tracker(staff_client):
    entry = ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4.x")
    assert authcache.allowed_client_prefixes() == (b"-TR4",)  # cached now
    url = _url(ClientPrefix, "change", entry.pk)
    data = _form_data(staff_client.get(url))
    data.pop("is_allowed")
    assert staff_client.post(url, data).status_code == 302
    assert authcache.allowed_client_prefixes() == ()
    row = AuditLog.objects.get(action="client_prefix_change")
    assert row.old_values == {"is_allowed": True} and row.new_values == {"is_allowed": False}


def test_site_page_add_and_delete_are_audited(staff_client):
    response = staff_client.post(
        _url(SitePage, "add"), {"slug": "contact", "title": "Contact", "body": "Write to us."}
    )
    assert response.status_code == 302
    page = SitePage.objects.get(slug="contact")
    created = AuditLog.objects.get(action="site_page_create")
    assert created.new_values["body"] == "Write to us."
    assert staff_client.post(_url(SitePage, "delete", page.pk), {"post": "yes"}).status_code == 302
    assert not SitePage.objects.filter(slug="contact").exists()
    deleted = AuditLog.objects.get(action="site_page_delete")
    assert deleted.old_values["title"] == "Contact" and deleted.target_id == str(page.pk)


def test_invite_added_in_admin_expires_and_code_is_shown_once(staff, staff_client):
    response = staff_client.post(_url(Invite, "add"), {"email": "friend@example.org"}, follow=True)
    assert response.status_code == 200
    invite = Invite.objects.get()
    assert invite.inviter == staff and invite.email == "friend@example.org"
    expected = timezone.now() + timedelta(days=7)
    assert abs((invite.expires_at - expected).total_seconds()) < 60
    assert any(invite.code in str(m) for m in response.context["messages"])
    listing = staff_client.get(_url(Invite, "changelist")).content.decode()
    assert invite.code[:6] in listing and invite.code not in listing
    detail = staff_client.get(_url(Invite, "change", invite.pk)).content.decode()
    assert invite.code not in detail
    assert AuditLog.objects.get(action="invite_create").actor == staff


def test_invite_revoke_action(staff, staff_client):
    unused = members.invite_create(inviter=staff)
    used = members.invite_create(inviter=staff)
    Invite.objects.filter(pk=used.pk).update(used_by=MemberFactory(), used_at=timezone.now())
    response = _action(staff_client, Invite, "revoke_invites", [unused, used])
    unused.refresh_from_db()
    used.refresh_from_db()
    assert unused.is_revoked is True and used.is_revoked is False
    assert AuditLog.objects.filter(action="invite_revoke", target_id=str(unused.pk)).exists()
    texts = _messages(response)
    assert "Revoked 1 invite(s)." in texts
    assert any("cannot be revoked" in m for m in texts)


def test_admin_index_names_models_in_plain_english_under_the_site_name(staff_client, settings):
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "Statistics flushes" in page and "flushs" not in page
    assert f"{settings.PBTS_SITE_NAME} moderation" in page
