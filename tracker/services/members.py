"""Member services: creation, invites and registration, passkeys, API tokens, moderation."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotPermitted
from core.models import Notification, NotificationSettings
from core.notifications import forget_unread_count, notify
from reputation.services import ledger_open
from tracker import authcache
from tracker.models import Invite, Member, MemberClass, new_passkey

# The name a deleted account keeps (member_anonymise); nobody may register one.
ANONYMOUS_NAME = re.compile(r"deleted-\d+(-[0-9a-f]+)?", re.IGNORECASE)


@transaction.atomic
def member_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    invited_by: Member | None = None,
) -> Member:
    """Create a member with a passkey, an API token and an empty ledger.

    ``password=None`` leaves the account without a usable password (API and tracker only).

    Raises:
        Conflict: the username is taken (case-insensitive).
    """
    if Member.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", field="username")
    if ANONYMOUS_NAME.fullmatch(username):
        raise InvalidInput(
            "Names like deleted-<number> are kept for deleted accounts.", field="username"
        )
    member = Member(
        username=username,
        email=email,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
        invited_by=invited_by,
        invites_left=settings.PBTS_NEW_MEMBER_INVITES,
    )
    if password is None:
        member.set_unusable_password()
    else:
        member.set_password(password)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:
        raise Conflict("That username is taken.", field="username") from exc
    ledger_open(member_id=member.pk)
    Token.objects.create(user=member)
    return member


def member_password_check(*, username: str, email: str, password: str) -> None:
    """Apply the site's password validators (``AUTH_PASSWORD_VALIDATORS``) to a new password.

    Raises:
        InvalidInput: the password is too short, too common, numeric or too like the name;
            ``field="password"``.
    """
    try:
        validate_password(password, Member(username=username, email=email))
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from exc


def member_set_password_url(member: Member) -> str:
    """Return a one-time link under ``PBTS_BASE_URL`` where ``member`` sets a password.

    It is Django's password-reset confirm link (``/password/reset/<uidb64>/<token>/``): valid for
    ``PASSWORD_RESET_TIMEOUT`` seconds (3 days by default) and void once the password changes
    or the member logs in, since the token hashes both.
    """
    uid = urlsafe_base64_encode(force_bytes(member.pk))
    token = default_token_generator.make_token(member)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return f"{settings.PBTS_BASE_URL}{path}"


def member_api_token(member: Member) -> str:
    """Return the member's API token key (40 hex), creating it if missing."""
    token, _ = Token.objects.get_or_create(user=member)
    return token.key


def owner_ensure(*, username: str, email: str, password: str = "") -> tuple[Member, str | None]:
    """Make sure the owner account (a superuser) exists; idempotent.

    Returns the owner and, only when the account was created without a configured password,
    the generated password (to be shown once, never logged).
    """
    existing = Member.objects.filter(username=username).first()
    if existing is not None:
        return existing, None
    generated = None if password else secrets.token_urlsafe(16)
    owner = member_create(
        username=username, email=email, password=password or generated, is_superuser=True
    )
    return owner, generated


@transaction.atomic
def invite_create(*, inviter: Member, email: str = "") -> Invite:
    """Create an invite that expires after ``PBTS_INVITE_DAYS`` days.

    Staff invite without limit; other members spend one of ``invites_left``.

    Raises:
        NotPermitted: the inviter is banned or has no invites left.
    """
    inviter = Member.objects.select_for_update().get(pk=inviter.pk)
    if inviter.is_banned:
        raise NotPermitted("Banned members cannot invite.")
    if not inviter.is_moderator:
        if inviter.invites_left < 1:
            raise NotPermitted("You have no invites left.")
        inviter.invites_left -= 1
        inviter.save(update_fields=["invites_left", "updated_at"])
    expires_at = timezone.now() + timedelta(days=settings.PBTS_INVITE_DAYS)
    return Invite.objects.create(inviter=inviter, email=email, expires_at=expires_at)


def _usable_invite(code: str) -> Invite:
    invite = Invite.objects.select_for_update().select_related("inviter").filter(code=code).first()
    if invite is None or invite.is_revoked:
        raise InvalidInput("This invite code is not valid.", field="invite_code")
    if invite.used_by_id is not None or invite.used_at is not None:
        raise InvalidInput("This invite has already been used.", field="invite_code")
    if invite.expires_at <= timezone.now():
        raise InvalidInput("This invite has expired.", field="invite_code")
    if invite.inviter.is_banned:
        raise InvalidInput("This invite is no longer valid.", field="invite_code")
    return invite


@transaction.atomic
def member_register(*, invite_code: str, username: str, email: str, password: str) -> Member:
    """Register a member through an invite; the invite is used up and the tree recorded.

    Raises:
        InvalidInput: wrong, used, revoked or expired invite (field ``invite_code``), or a
            password the validators refuse (field ``password``).
        Conflict: the username is taken (field ``username``).
    """
    invite = _usable_invite(invite_code.strip())
    member_password_check(username=username, email=email, password=password)
    member = member_create(
        username=username, email=email, password=password, invited_by=invite.inviter
    )
    invite.used_by = member
    invite.used_at = timezone.now()
    invite.save(update_fields=["used_by", "used_at"])
    notify(
        member=invite.inviter,
        kind="invite_used",
        subject=f"{member.username} joined with your invite",
        body="You are responsible for the members you invite: see the rules.",
        url=f"/members/{member.username}/",
    )
    return member


@transaction.atomic
def invite_revoke(*, invite: Invite, actor: Member) -> None:
    """Revoke an unused invite; the inviter (or staff) may do it.

    Raises:
        NotPermitted: the actor is neither the inviter nor staff.
        InvalidInput: the invite was already used.
    """
    if actor.pk != invite.inviter_id and not actor.is_moderator:
        raise NotPermitted("You cannot revoke this invite.")
    if invite.used_by_id is not None:
        raise InvalidInput("A used invite cannot be revoked.")
    invite.is_revoked = True
    invite.save(update_fields=["is_revoked"])


# --- who may moderate whom -------------------------------------------------------------------

# Ranks of moderation power. Member classes (User ... Uploader) are earned standings, not
# powers: every non-staff member has the lowest rank.
RANK_MEMBER = 0
RANK_STAFF = 1
RANK_OWNER = 2  # superusers


def moderation_rank(member: Member) -> int:
    """A member's rank of moderation power: superuser > staff > everyone else."""
    if member.is_superuser:
        return RANK_OWNER
    if member.is_staff:
        return RANK_STAFF
    return RANK_MEMBER


def moderation_check(*, actor: Member, member: Member) -> None:
    """Refuse unless ``actor`` may act on ``member``'s account (ban, unban, downloading, ratio
    exemption, member class, a passkey reset by someone else).

    The rules: the actor is active, staff and not banned (a ban removes every power at once);
    nobody moderates their own standing (so nobody lifts their own ban or restriction); and the
    actor's rank (:func:`moderation_rank`) must be strictly higher than the member's, so a
    moderator cannot act on another moderator. Superusers, the highest rank, may act on other
    superusers.

    Raises:
        NotPermitted: with the rule that refused.
    """
    if actor.is_banned:
        raise NotPermitted("Your account is banned: you cannot moderate.")
    if not (actor.is_active and actor.is_moderator):
        raise NotPermitted("Only staff can moderate members.")
    if actor.pk == member.pk:
        raise NotPermitted("You cannot change your own standing: another moderator must.")
    actor_rank, member_rank = moderation_rank(actor), moderation_rank(member)
    if member_rank == RANK_OWNER and actor_rank < RANK_OWNER:
        raise NotPermitted("Only the owner can moderate the owner.")
    if actor_rank <= member_rank and actor_rank < RANK_OWNER:
        raise NotPermitted("Only a superuser can moderate a staff member.")


def may_moderate(*, actor: Member, member: Member) -> bool:
    """Whether :func:`moderation_check` lets ``actor`` act on ``member``."""
    try:
        moderation_check(actor=actor, member=member)
    except NotPermitted:
        return False
    return True


@transaction.atomic
def passkey_reset(*, member: Member, actor: Member | None = None) -> str:
    """Give the member a new passkey; the old one stops working at once (cache invalidated).

    Returns the new passkey (32 hex). A reset by someone other than the member is audited and
    needs the right to moderate the member.

    Raises:
        NotPermitted: someone else resets it and :func:`moderation_check` refuses.
    """
    if actor is not None and actor.pk != member.pk:
        moderation_check(actor=actor, member=member)
    member = Member.objects.select_for_update().get(pk=member.pk)
    old = member.passkey
    member.passkey = new_passkey()
    member.save(update_fields=["passkey", "updated_at"])
    authcache.invalidate_passkey(old)
    if actor is not None and actor.pk != member.pk:
        audit_record(
            actor=actor,
            action="passkey_reset",
            target=member,
            old={"passkey": old},
            new={"passkey": member.passkey},
        )
    return member.passkey


@transaction.atomic
def api_token_reset(*, member: Member) -> str:
    """Replace the member's API token; the old token stops working at once. Returns the key."""
    Token.objects.filter(user=member).delete()
    return Token.objects.create(user=member).key


STANDING_FIELDS = ("is_banned", "ban_reason", "can_download", "is_ratio_exempt", "member_class")


@transaction.atomic
def member_moderate(
    *, member: Member, actor: Member, action: str, reason: str = "", **changes: Any
) -> Member:
    """Apply staff changes to a member's standing, audit them and invalidate the auth cache.

    Args:
        changes: any of ``is_banned``, ``ban_reason``, ``can_download``, ``is_ratio_exempt``,
            ``member_class``.

    Raises:
        NotPermitted: :func:`moderation_check` refuses (a banned or non-staff actor, the
            actor's own standing, a target of the same or a higher rank).
        InvalidInput: an unknown field or member class.
    """
    if member.pk == actor.pk and changes.get("is_banned"):
        raise NotPermitted("You cannot ban yourself.")
    moderation_check(actor=actor, member=member)
    unknown = set(changes) - set(STANDING_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if "member_class" in changes and changes["member_class"] not in MemberClass.values:
        raise InvalidInput("Unknown member class.", field="member_class")
    member = Member.objects.select_for_update().get(pk=member.pk)
    old = {field: getattr(member, field) for field in changes}
    for field, value in changes.items():
        setattr(member, field, value)
    member.save(update_fields=[*changes, "updated_at"])
    authcache.invalidate_passkey(member.passkey)
    audit_record(actor=actor, action=action, target=member, old=old, new=changes, reason=reason)
    return member


def member_ban(*, member: Member, actor: Member, reason: str) -> Member:
    """Ban a member (announces, downloads and logins refused). ``reason`` is required.

    Raises:
        InvalidInput: no reason given.
        NotPermitted: see :func:`member_moderate` (yourself, a banned actor, same rank).
    """
    if not reason.strip():
        raise InvalidInput("A ban needs a reason.", field="reason")
    return member_moderate(
        member=member,
        actor=actor,
        action="member_ban",
        reason=reason,
        is_banned=True,
        ban_reason=reason,
    )


def member_unban(*, member: Member, actor: Member, reason: str = "") -> Member:
    """Lift a ban.

    Raises:
        NotPermitted: see :func:`member_moderate`; in particular nobody lifts their own ban.
    """
    return member_moderate(
        member=member,
        actor=actor,
        action="member_unban",
        reason=reason,
        is_banned=False,
        ban_reason="",
    )


def member_set_downloading(
    *, member: Member, actor: Member, enabled: bool, reason: str = ""
) -> Member:
    """Enable or disable a member's downloading (leeching and .torrent downloads).

    Raises:
        NotPermitted: see :func:`member_moderate`.
    """
    action = "downloading_enable" if enabled else "downloading_disable"
    return member_moderate(
        member=member, actor=actor, action=action, reason=reason, can_download=enabled
    )


# --- account deletion ------------------------------------------------------------------------


def _end_sessions(member_id: int) -> int:
    """Delete the database sessions of ``member_id``; returns how many. (They are dead anyway:
    an inactive member with a changed password fails Django's session check.)"""
    doomed = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get("_auth_user_id")) == str(member_id)
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


@transaction.atomic
def member_anonymise(*, member: Member, password: str) -> Member:
    """Delete a member's account at their own request: anonymise it, keep the statistics.

    The member row stays so that torrent history, the ledger and uploads keep adding up (swarm
    and site totals do not change): the username becomes ``deleted-<id>``, the e-mail address
    and names are cleared, the password becomes unusable, passkey and API token are replaced by
    ones nobody knows (the old passkey stops at once: auth cache invalidated), staff flags and
    invites left are dropped, ``is_active`` is false (no login, no announce), sessions end, and
    the member's notifications, notification settings and sent invites are deleted. Audited as
    ``member_delete`` with the member as actor (no name or address recorded).

    Args:
        member: the member deleting their own account.
        password: their current password, as confirmation.

    Raises:
        InvalidInput: the password is wrong (field ``password``; also for an account that
            never had a password: it must set one first).
        NotPermitted: the member is the last active superuser.
    """
    member = Member.objects.select_for_update().get(pk=member.pk)
    if not member.is_active:
        raise InvalidInput("This account is already deleted.")
    if not password or not member.check_password(password):
        raise InvalidInput("That is not your password.", field="password")
    if member.is_superuser:
        others = Member.objects.filter(is_superuser=True, is_active=True).exclude(pk=member.pk)
        if not others.select_for_update().exists():
            raise NotPermitted(
                "You are the last superuser: make another member superuser before deleting "
                "your account."
            )
    old_passkey = member.passkey
    name = f"deleted-{member.pk}"
    if Member.objects.filter(username__iexact=name).exclude(pk=member.pk).exists():
        name = f"{name}-{secrets.token_hex(3)}"  # a name taken before the rule existed
    old = {"is_active": True, "is_staff": member.is_staff, "is_superuser": member.is_superuser}
    member.username = name
    member.email = ""
    member.first_name = member.last_name = ""
    member.set_unusable_password()
    member.passkey = new_passkey()
    member.is_active = False
    member.is_staff = member.is_superuser = False
    member.invites_left = 0
    member.save()
    authcache.invalidate_passkey(old_passkey)
    Token.objects.filter(user=member).delete()
    Token.objects.create(user=member)
    Notification.objects.filter(member=member).delete()
    forget_unread_count(member.pk)
    NotificationSettings.objects.filter(member=member).delete()
    Invite.objects.filter(inviter=member).delete()
    sessions = _end_sessions(member.pk)
    audit_record(
        actor=member,
        action="member_delete",
        target=member,
        old=old,
        new={"username": name, "is_active": False, "sessions_ended": sessions},
        reason="deleted by the member",
    )
    return member
