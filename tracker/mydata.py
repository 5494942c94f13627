"""The tracker's sections of "Export my data" (``core.mydata``): the account, invites,
uploads and per-torrent history. Registered in :class:`tracker.apps.TrackerConfig.ready`."""

from __future__ import annotations

from typing import Any

from core.mydata import mask_secret
from tracker.models import Invite, Member, Torrent, TorrentHistory

SECRET_NOTE = (
    "Your passkey and API token are masked here so that this file is no key to your account; "
    "the profile's Passkey & API token page shows them in full."
)


def account_section(member: Member) -> dict[str, Any]:
    """The account's fields (never the password hash; passkey and API token masked)."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.filter(user=member).values_list("key", flat=True).first() or ""
    return {
        "id": member.pk,
        "username": member.username,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "date_joined": member.date_joined,
        "last_login": member.last_login,
        "member_class": member.member_class,
        "invited_by": member.invited_by.username if member.invited_by_id else None,
        "invites_left": member.invites_left,
        "is_staff": member.is_staff,
        "is_banned": member.is_banned,
        "ban_reason": member.ban_reason,
        "can_download": member.can_download,
        "is_ratio_exempt": member.is_ratio_exempt,
        "has_password": member.has_usable_password(),
        "passkey": mask_secret(member.passkey),
        "api_token": mask_secret(token),
        "secrets_note": SECRET_NOTE,
    }


def invites_section(member: Member) -> dict[str, Any]:
    """Invites the member sent (codes masked: an unused one still opens the door) and the one
    they joined with."""
    sent = [
        {
            "code": mask_secret(invite.code, shown=6),
            "email": invite.email,
            "created_at": invite.created_at,
            "expires_at": invite.expires_at,
            "used_by": invite.used_by.username if invite.used_by_id else None,
            "used_at": invite.used_at,
            "is_revoked": invite.is_revoked,
        }
        for invite in Invite.objects.filter(inviter=member).select_related("used_by")
    ]
    used = Invite.objects.filter(used_by=member).select_related("inviter").first()
    return {
        "sent": sent,
        "used": (
            {"inviter": used.inviter.username, "used_at": used.used_at}
            if used is not None
            else None
        ),
    }


def uploads_section(member: Member) -> list[dict[str, Any]]:
    """The torrents the member uploaded (any status)."""
    return list(
        Torrent.objects.filter(uploader=member)
        .order_by("created_at", "id")
        .values(
            "id",
            "name",
            "info_hash",
            "size",
            "status",
            "moderation_reason",
            "category__name",
            "created_at",
        )
    )


def history_section(member: Member) -> list[dict[str, Any]]:
    """The member's per-torrent statistics (bytes, seconds), as the announce flush credited."""
    return list(
        TorrentHistory.objects.filter(member=member)
        .order_by("created_at", "id")
        .values(
            "torrent_id",
            "torrent__name",
            "uploaded",
            "downloaded",
            "seed_seconds",
            "completed_at",
            "leeched_at",
            "created_at",
            "updated_at",
        )
    )


def register() -> None:
    """Register the tracker's sections (called from ``TrackerConfig.ready``)."""
    from core.mydata import register_section

    register_section("account", account_section)
    register_section("invites", invites_section)
    register_section("uploads", uploads_section)
    register_section("torrent_history", history_section)
