"""``{% chain_member_block member %}``: the profile's on-chain reputation block."""

from __future__ import annotations

from typing import Any

from django import template

from chain.selectors import chain_config, chain_is_configured, member_chain_view

register = template.Library()


@register.inclusion_tag("chain/member_block.html", takes_context=True)
def chain_member_block(context: dict[str, Any], member: Any) -> dict[str, Any]:
    """Context of the block: the member's published figures; for the member themself the
    migration form and the message to sign. Says "not configured" without a chain."""
    request = context.get("request")
    viewer = getattr(request, "user", None)
    is_self = bool(viewer and viewer.is_authenticated and viewer.pk == member.pk)
    staff = bool(viewer and viewer.is_authenticated and viewer.is_moderator)
    configured = chain_is_configured()
    config = chain_config() if configured else None
    view = member_chain_view(member, live=False, private=is_self or staff)
    migration = view.get("migration")
    return {
        "configured": configured,
        "config": config,
        "is_self": is_self,
        "view": view,
        "migration": migration,
        "can_migrate": bool(
            is_self and config and config.referrer_address and not view.get("imported")
        ),
        "csrf_token": context.get("csrf_token"),
    }
