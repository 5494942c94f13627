"""``{% moderation_member_block member %}`` and ``{% moderation_torrent_block torrent %}``:
the moderation blocks of the tracker's member and torrent pages, owned by this app so that
tracker templates need no moderation import (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from django import template

from core.admin_site import is_moderator
from moderation import selectors

register = template.Library()


def _viewer(context: dict[str, Any]) -> tuple[Any, Any]:
    request = context.get("request")
    return request, getattr(request, "user", None)


@register.inclusion_tag("moderation/member_block.html", takes_context=True)
def moderation_member_block(context: dict[str, Any], member: Any) -> dict[str, Any]:
    """Active warnings (to the member themself and staff), staff notes (staff only, never the
    member's own), the staff links, and a report link (other members)."""
    request, viewer = _viewer(context)
    if viewer is None or not viewer.is_authenticated:
        return {"visible": False}
    is_self = viewer.pk == member.pk
    is_staff = request is not None and is_moderator(request)
    show_warnings = is_self or is_staff
    return {
        "visible": True,
        "member": member,
        "is_self": is_self,
        "is_staff": is_staff,
        "warnings": list(selectors.member_warnings(member=member)) if show_warnings else [],
        "notes": list(selectors.member_notes(member=member, viewer=viewer)[:5]) if is_staff else [],
        "class_lock": selectors.class_lock(member) if is_staff else None,
    }


@register.inclusion_tag("moderation/torrent_block.html", takes_context=True)
def moderation_torrent_block(context: dict[str, Any], torrent: Any) -> dict[str, Any]:
    """The report link and, for staff on a pending torrent, the link to the queue."""
    request, viewer = _viewer(context)
    return {
        "visible": bool(viewer is not None and viewer.is_authenticated),
        "torrent": torrent,
        "is_staff": request is not None and is_moderator(request),
    }
