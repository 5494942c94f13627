"""``manage.py rerender_markdown``: render every torrent description and site page again.

Descriptions and site pages are rendered once, when saved, with the settings of that moment
(``PBTS_REMOTE_IMAGES``, ``PBTS_BASE_URL``). Run this after changing either so that the stored
HTML follows; it writes only the rows whose HTML changes. Idempotent.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tracker.services.torrents import rendered_markup_refresh


class Command(BaseCommand):
    """Re-render stored Markdown HTML (``rendered_markup_refresh``) and say how many rows."""

    help = "Render torrent descriptions and site pages again with the current settings."

    def handle(self, *args: Any, **options: Any) -> None:
        """Re-render and report the counts."""
        torrents, pages = rendered_markup_refresh()
        self.stdout.write(f"Rendered again: {torrents} torrent description(s), {pages} page(s).")
