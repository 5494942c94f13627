"""Template filters of the member pages: ``markdown`` and ``filesize``.

Load with ``{% load tracker_extras %}``.
"""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from tracker.markup import render_markdown

register = template.Library()

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """Render Markdown to sanitized HTML (``tracker.markup.render_markdown``), marked safe."""
    return mark_safe(render_markdown(text or ""))  # nh3 sanitized it


@register.filter
def filesize(value: int | None) -> str:
    """A byte count in binary units as trackers show them: ``512 B``, ``1.50 GiB``."""
    try:
        size = float(value or 0)
    except (TypeError, ValueError):
        return ""
    if abs(size) < 1024:
        return f"{int(size)} B"
    for unit in _UNITS:
        size /= 1024
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.2f} {unit}"
    return ""  # unreachable
