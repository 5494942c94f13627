from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.errors import Conflict, InvalidInput, NotPermitted
from core.models import AuditLog
from tracker import authcache
from tracker.models import Invite
from tracker.services import members
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db


def test_member_create_gives_passkey_token_and_ledger():
    member = MemberFactory()
    assert len(member.passkey) == 32 and int(member.passkey, 16) >= 0
    assert Token.objects.filter(user=member).exists()
    assert member.ledger.uploaded == 0


def test_member_create_refuses_taken_username_case_insensitive():
    MemberFactory(username="alice")
    with pytest.raises(Conflict):
        MemberFactory(username="ALICE")


def test_passkey_reset_makes_old_passkey_unknown_at_once():
    member = MemberFactory()
    old = member.passkey
    assert authcache.member_standing(old).member_id == member.pk  # fills the cache
    new = members.passkey_reset(member=member)
    assert new != old
    assert authcache.member_standing(old) is None
    assert authcache.member_standing(new).member_id == member.pk


def test_api_token_reset_replaces_token():
    member = MemberFactory()
    old = Token.objects.get(user=member).key
    new = members.api_token_reset(member=member)
    assert new != old
    assert not Token.objects.filter(key=old).exists()


def test_invite_register_records_tree_and_uses_invite():
    staff = MemberFactory(is_staff=True)
    invite = members.invite_create(inviter=staff)
    member = members.member_register(
        invite_code=invite.code, username="newbie", email="n@example.org", password=DEFAULT_PASSWORD
    )
    assert member.invited_by == staff
    invite.refresh_from_db()
    assert invite.used_by == member
    with pytest.raises(InvalidInput) as err:
        members.member_register(
            invite_code=invite.code, username="other", email="", password=DEFAULT_PASSWORD
        )
    assert err.value.field == "invite_code"


def test_expired_or_wrong_invite_is_refused():
    staff = MemberFactory(is_staff=True)
    invite = members.invite_create(inviter=staff)
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for code in (invite.code, "no-such-code"):
        with pytest.raises(InvalidInput):
            members.member_register(
                invite_code=code, username="x", email="", password=DEFAULT_PASSWORD
            )


def test_member_without_invites_cannot_invite():
    member = MemberFactory()
    assert member.invites_left == 0
    with pytest.raises(NotPermitted):
        members.invite_create(inviter=member)


def test_ban_is_audited_and_invalidates_standing():
    staff = MemberFactory(is_staff=True)
    member = MemberFactory()
    assert authcache.member_standing(member.passkey).is_banned is False
    members.member_ban(member=member, actor=staff, reason="cheating")
    assert authcache.member_standing(member.passkey).is_banned is True
    row = AuditLog.objects.get(action="member_ban")
    assert row.old_values == {"is_banned": False, "ban_reason": ""}
    assert row.new_values["is_banned"] is True and row.actor == staff


def test_staff_passkey_reset_is_audited_with_secrets_masked():
    staff = MemberFactory(is_staff=True)
    member = MemberFactory()
    old_passkey = member.passkey
    members.passkey_reset(member=member, actor=staff)
    member.refresh_from_db()
    assert member.passkey != old_passkey
    row = AuditLog.objects.get(action="passkey_reset")
    assert row.old_values == {"passkey": "********"}
    assert row.new_values == {"passkey": "********"}
    for passkey in (old_passkey, member.passkey):
        assert passkey not in str(row.old_values) + str(row.new_values)
