"""Template helpers of the browse pages: ``page_url`` (a pagination link for any query
parameter), ``duration`` (seconds as ``3d 4h``) and ``feed_key_section`` (the feed key block
of the security page).

Load with ``{% load browse_tags %}``.
"""

from __future__ import annotations

from django import template
from django.urls import reverse

from tracker.services.browse import feed_key_get

register = template.Library()


@register.simple_tag(takes_context=True)
def page_url(context: template.Context, param: str, number: int) -> str:
    """The current query string with ``param`` set to ``number`` (``?a=1&peers=2``): lets one
    page carry several paginated lists (files, peers, snatches) independently."""
    params = context["request"].GET.copy()
    params[param] = number
    return f"?{params.urlencode()}"


@register.filter
def duration(seconds: int | None) -> str:
    """Seconds as a short duration: ``0m``, ``45m``, ``5h 3m``, ``12d 4h``."""
    try:
        total = max(int(seconds or 0), 0)
    except (TypeError, ValueError):
        return ""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


@register.inclusion_tag("tracker/_feed_key_section.html", takes_context=True)
def feed_key_section(context: template.Context) -> dict:
    """The security page's feed key block: where the feed URLs are, and the reset form."""
    request = context["request"]
    key = feed_key_get(member=request.user)
    return {
        "feed_rss_url": reverse("feed_rss", args=[key]),
        "csrf_token": context.get("csrf_token"),
    }
