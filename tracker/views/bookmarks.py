"""Bookmarks: the toggle (a POST from the torrent page or a browse row) and "My bookmarks"."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from core.errors import DomainError
from core.views import form_post_only, member_required, refusal
from tracker.models import Bookmark
from tracker.selectors import torrent_visible
from tracker.services.browse import bookmark_set, bookmark_toggle

PAGE_SIZE = 50


def _back(request: HttpRequest, default: str) -> str:
    """The page the form came from (``next``), if it is on this site; else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@member_required
@form_post_only
def bookmark_toggle_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Bookmark or un-bookmark a torrent the member may see (404 otherwise). ``action`` is
    ``add`` or ``remove`` (a reload of the form does not flip it back), anything else toggles;
    then back to ``next`` (a page of this site) or the torrent's page."""
    torrent = get_object_or_404(torrent_visible(viewer=request.user).only("pk", "name"), pk=pk)
    action = request.POST.get("action", "")
    try:
        if action in ("add", "remove"):
            now = bookmark_set(member=request.user, torrent=torrent, bookmarked=action == "add")
        else:
            now = bookmark_toggle(member=request.user, torrent=torrent)
    except DomainError as err:
        return refusal(request, title="Not allowed", message=err.message, status=err.status_code)
    messages.success(
        request, f"{'Bookmarked' if now else 'Removed from your bookmarks'}: {torrent.name}"
    )
    return redirect(_back(request, reverse("torrent_detail", args=[torrent.pk])))


@member_required
def bookmark_list(request: HttpRequest) -> HttpResponse:
    """The member's own bookmarks, newest first, ``PAGE_SIZE`` a page (torrents the member
    can no longer see are left out)."""
    visible = torrent_visible(viewer=request.user)
    bookmarks = (
        Bookmark.objects.filter(member=request.user, torrent__in=visible)
        .select_related("torrent", "torrent__category", "torrent__uploader")
        .defer("torrent__metainfo", "torrent__description", "torrent__description_html")
        .order_by("-created_at", "-id")
    )
    page = Paginator(bookmarks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tracker/bookmark_list.html", {"page": page})
