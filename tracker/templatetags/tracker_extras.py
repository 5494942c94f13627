"""Template filters of the member pages: ``filesize``.

Markdown is not rendered here: descriptions and site pages are rendered when saved, and the
templates show the stored, sanitized HTML (``description_html``, ``body_html``).

Load with ``{% load tracker_extras %}``.
"""

from __future__ import annotations

from django import template

register = template.Library()

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


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
