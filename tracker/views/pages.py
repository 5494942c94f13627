"""The home page and the site pages (rules, FAQ)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from core.views import member_required
from tracker.models import SitePage
from tracker.selectors import torrent_browse
from tracker.views.accounts import member_stats

HOME_LATEST = 10


@member_required
def home(request: HttpRequest) -> HttpResponse:
    """The latest approved torrents and the member's quick stats."""
    context = {
        "latest": torrent_browse()[:HOME_LATEST],
        "stats": member_stats(request.user),
    }
    return render(request, "tracker/home.html", context)


@member_required
def site_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A static page written by staff in Markdown (rules, FAQ), rendered safely."""
    page = get_object_or_404(SitePage, slug=slug)
    return render(request, "tracker/sitepage_detail.html", {"page": page})
