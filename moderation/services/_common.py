"""Checks every moderation service shares."""

from __future__ import annotations

from django.utils.text import normalize_newlines

from core.errors import InvalidInput, NotPermitted
from tracker.models import Member

NOTE_MAX_CHARS = 5000
REASON_MAX_CHARS = 2000


def staff_check(actor: Member) -> None:
    """Refuse unless ``actor`` is active staff in good standing (a ban removes every power).

    Raises:
        NotPermitted: banned, inactive or not staff.
    """
    if actor.is_banned:
        raise NotPermitted("Your account is banned: you cannot moderate.")
    if not (actor.is_active and actor.is_moderator):
        raise NotPermitted("Only staff can do this.")


def clean_text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    """Strip, normalise line breaks, refuse NUL, empty (when ``required``) and text longer
    than ``limit`` characters.

    Raises:
        InvalidInput: on ``field``.
    """
    value = normalize_newlines(value or "").strip()
    if "\x00" in value:
        raise InvalidInput("The text contains a NUL character.", field=field)
    if required and not value:
        raise InvalidInput("This field is required.", field=field)
    if len(value) > limit:
        raise InvalidInput(f"Too long ({len(value):,} characters; at most {limit:,}).", field=field)
    return value
