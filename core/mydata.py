""" "Export my data": a registry of sections that each app fills, and the export built from it.

Each app registers, in its ``AppConfig.ready()``, one callable per section::

    from core.mydata import register_section
    register_section("bonus", bonus_section)   # bonus_section(member) -> JSON-able value

A section returns what the site holds about *that* member only: plain values (``str``,
``int``, ``float``, ``bool``, ``None``, lists and dicts of them; ``datetime`` and ``Decimal``
are turned into ISO 8601 strings and strings). Secrets are never exported in full (no
password hash; passkey and API token masked, see docs/my-data.md). The export is the same on
the page (``/profile/export/``) and the API (``/api/v1/me/export/``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

EXPORT_FORMAT = "pbts-my-data/1"

Section = Callable[["AbstractBaseUser"], Any]
_sections: dict[str, Section] = {}


def register_section(name: str, section: Section) -> None:
    """Add ``section`` to every export under ``name``; registering a name twice replaces
    the earlier callable (``ready()`` may run again in tests).

    Raises:
        ValueError: an empty name.
    """
    if not name or not name.strip():
        raise ValueError("A section needs a name.")
    _sections[name] = section


def section_names() -> list[str]:
    """The registered section names, sorted."""
    return sorted(_sections)


def mask_secret(value: str, *, shown: int = 4) -> str:
    """A secret as an export shows it: its first ``shown`` characters, then ``…`` (an empty
    value stays empty)."""
    return f"{value[:shown]}…" if value else ""


def member_export(member: AbstractBaseUser) -> dict[str, Any]:
    """Everything the registered sections hold about ``member``, as JSON-native values.

    Returns ``{"format": "pbts-my-data/1", "generated_at": ISO 8601, "member_id": int,
    "sections": {name: value, ...}}``, sections in name order.
    """
    data = {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now(),
        "member_id": member.pk,
        "sections": {name: _sections[name](member) for name in section_names()},
    }
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def member_export_json(member: AbstractBaseUser) -> str:
    """:func:`member_export` as indented JSON text (the download's body)."""
    return json.dumps(member_export(member), indent=2, ensure_ascii=False)


# --- the core app's own section -------------------------------------------------------------


def core_section(member: AbstractBaseUser) -> dict[str, Any]:
    """The member's notifications and notification settings."""
    from core.models import Notification, NotificationSettings

    settings_row = NotificationSettings.objects.filter(member=member).first()
    return {
        "notification_settings": {
            "email_enabled": bool(settings_row and settings_row.email_enabled),
        },
        "notifications": list(
            Notification.objects.filter(member=member)
            .order_by("created_at", "id")
            .values("id", "kind", "subject", "body", "url", "created_at", "read_at")
        ),
    }
