"""Warnings: staff warn a member for a number of days; a warning is active until it expires
(computed from ``expires_at``) or staff revoke it early.

Who may warn is who may act on the member's account (``tracker.services.members.
moderation_check``): staff in good standing, never themselves, and only members of a lower
rank (a moderator cannot warn another moderator; superusers can). Audited; the member is
notified.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.notifications import notify
from moderation.models import MemberWarning
from moderation.services._common import REASON_MAX_CHARS, clean_text
from tracker.models import Member
from tracker.services.members import moderation_check


@transaction.atomic
def warning_issue(*, member: Member, actor: Member, reason: str, days: int) -> MemberWarning:
    """Warn ``member`` for ``days`` days (1 to ``PBTS_WARNING_MAX_DAYS``); audited as
    ``member_warn``; the member is notified.

    Raises:
        NotPermitted: ``moderation_check`` refuses (banned or non-staff actor, themselves, a
            member of the same or a higher rank).
        InvalidInput: an empty or too long reason (field ``reason``), days out of range
            (field ``days``).
    """
    moderation_check(actor=actor, member=member)
    reason = clean_text(reason, field="reason", limit=REASON_MAX_CHARS)
    limit = settings.PBTS_WARNING_MAX_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= limit:
        raise InvalidInput(f"Give a whole number of days from 1 to {limit}.", field="days")
    expires_at = timezone.now() + timedelta(days=days)
    warning = MemberWarning.objects.create(
        member=member, issued_by=actor, reason=reason, expires_at=expires_at
    )
    audit_record(
        actor=actor,
        action="member_warn",
        target=member,
        new={"warning": warning.pk, "days": days, "expires_at": expires_at.isoformat()},
        reason=reason,
    )
    notify(
        member=member,
        kind="warning_issued",
        subject=f"You received a warning until {expires_at:%Y-%m-%d %H:%M} UTC",
        body=reason,
        url=reverse("profile"),
    )
    return warning


@transaction.atomic
def warning_revoke(*, warning: MemberWarning, actor: Member, reason: str = "") -> MemberWarning:
    """Revoke a warning before it expires; audited as ``warning_revoke``; the member is
    notified.

    Raises:
        NotPermitted: ``moderation_check`` refuses for the warned member.
        InvalidInput: a too long reason (field ``reason``).
        Conflict: the warning is already revoked or expired.
    """
    warning = (
        MemberWarning.objects.select_for_update(of=("self",))
        .select_related("member")
        .get(pk=warning.pk)
    )
    moderation_check(actor=actor, member=warning.member)
    reason = clean_text(reason, field="reason", limit=REASON_MAX_CHARS, required=False)
    now = timezone.now()
    if warning.revoked_at is not None:
        raise Conflict("This warning was already revoked.")
    if warning.expires_at <= now:
        raise Conflict("This warning has already expired.")
    warning.revoked_at, warning.revoked_by, warning.revoke_reason = now, actor, reason
    warning.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    audit_record(
        actor=actor,
        action="warning_revoke",
        target=warning.member,
        old={"warning": warning.pk, "expires_at": warning.expires_at.isoformat()},
        new={"warning": warning.pk, "revoked_at": now.isoformat()},
        reason=reason,
    )
    notify(
        member=warning.member,
        kind="warning_revoked",
        subject="A warning on your account was lifted",
        body=reason,
        url=reverse("profile"),
    )
    return warning
