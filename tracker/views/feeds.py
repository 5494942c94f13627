"""RSS 2.0 and Atom feeds of new torrents, authenticated by the member's feed key.

A feed reader has no session, so every feed URL carries the member's feed key
(``/feeds/<key>/...``; ``tracker.models.FeedKey``), never the passkey. Items link to
``/feeds/<key>/download/<id>/``, which answers the .torrent with the member's passkey inside
(``tracker.services.torrents.torrent_download``), so a client can fetch it unattended. A
wrong key is a 404; a banned or inactive member's key a 403. The feed page (``/feeds/``) lists
the member's URLs; the security page resets the key (``feed_key_reset``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.syndication.views import Feed
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Enclosure, Rss201rev2Feed
from django.utils.http import content_disposition_header

from core.errors import DomainError, NotFound
from core.views import form_post_only, member_required, refusal
from tracker.models import Category, FeedKey, Member, Torrent, TorrentStatus
from tracker.selectors import torrent_visible
from tracker.services import torrents as torrent_services
from tracker.services.browse import feed_key_get, feed_key_reset

BITTORRENT = "application/x-bittorrent"
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def feed_member(key: str) -> Member:
    """The member whose feed key is ``key``.

    Raises:
        Http404: no such key (or text that cannot be one).
        PermissionDenied: the member is banned or inactive (403).
    """
    if not _KEY_SHAPE.fullmatch(key):  # not a key at all (NUL, too long, ...): no lookup
        raise Http404("No such feed.")
    feed_key = FeedKey.objects.select_related("member").filter(key=key).first()
    if feed_key is None:
        raise Http404("No such feed.")
    member = feed_key.member
    if member.is_banned or not member.is_active:
        raise PermissionDenied("This feed's account is banned or inactive.")
    return member


def _absolute(path: str) -> str:
    """``path`` on ``PBTS_BASE_URL`` (feed readers fetch from outside a request)."""
    return f"{settings.PBTS_BASE_URL}{path}"


@dataclass(slots=True)
class FeedSource:
    """What one feed shows: the member, their key, and ``kind`` (``all``, ``category``,
    ``bookmarks``) with its category."""

    member: Member
    key: str
    kind: str
    category: Category | None = None


class TorrentFeed(Feed):
    """New approved torrents as RSS 2.0 (``AtomTorrentFeed``: Atom), newest first, at most
    ``PBTS_FEED_ITEMS``: every category, one category (``category/<slug>/``) or the member's
    bookmarks (``bookmarks/``)."""

    feed_type = Rss201rev2Feed
    kind = "all"

    def __call__(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """The feed; a private response (it is the member's own)."""
        response = super().__call__(request, *args, **kwargs)
        response["Cache-Control"] = "private, max-age=60"
        return response

    def get_object(self, request: HttpRequest, key: str, slug: str = "") -> FeedSource:
        """The member of ``key`` (404/403, see :func:`feed_member`) and the category
        ``slug`` (404 when unknown)."""
        member = feed_member(key)
        category = get_object_or_404(Category, slug=slug) if self.kind == "category" else None
        return FeedSource(member=member, key=key, kind=self.kind, category=category)

    def title(self, source: FeedSource) -> str:
        site = settings.PBTS_SITE_NAME
        if source.kind == "category" and source.category is not None:
            return f"{site}: new torrents in {source.category.name}"
        if source.kind == "bookmarks":
            return f"{site}: my bookmarks"
        return f"{site}: new torrents"

    def link(self, source: FeedSource) -> str:
        if source.kind == "bookmarks":
            return _absolute(reverse("bookmark_list"))
        return _absolute(reverse("torrent_list"))

    def description(self, source: FeedSource) -> str:
        return "Newest torrents first; each item links to its .torrent with your passkey."

    def items(self, source: FeedSource) -> list[Torrent]:
        qs = (
            torrent_visible(viewer=source.member)
            .filter(status=TorrentStatus.APPROVED)
            .select_related("category", "uploader")
            .defer("metainfo", "description", "description_html")
        )
        if source.kind == "category":
            qs = qs.filter(category=source.category)
        elif source.kind == "bookmarks":
            qs = qs.filter(bookmarks__member=source.member)
        torrents = list(qs.order_by("-created_at", "-id")[: settings.PBTS_FEED_ITEMS])
        for torrent in torrents:  # item links carry the key of this request's feed
            torrent.feed_key = source.key
        return torrents

    def item_title(self, torrent: Torrent) -> str:
        return torrent.name

    def item_description(self, torrent: Torrent) -> str:
        flags = " · freeleech" if torrent.is_freeleech else ""
        return (
            f"{torrent.category.name} · {torrent.size:,} bytes · {torrent.seeders} seeders · "
            f"{torrent.leechers} leechers{flags}"
        )

    def item_link(self, torrent: Torrent) -> str:
        return _absolute(reverse("feed_download", args=[torrent.feed_key, torrent.pk]))

    def item_guid(self, torrent: Torrent) -> str:
        return _absolute(reverse("torrent_detail", args=[torrent.pk]))

    item_guid_is_permalink = True

    def item_enclosures(self, torrent: Torrent) -> list[Enclosure]:
        return [Enclosure(self.item_link(torrent), str(torrent.size), BITTORRENT)]

    def item_pubdate(self, torrent: Torrent):
        return torrent.created_at

    def item_categories(self, torrent: Torrent) -> list[str]:
        return [torrent.category.name]


class AtomTorrentFeed(TorrentFeed):
    """:class:`TorrentFeed` as Atom 1.0."""

    feed_type = Atom1Feed

    def subtitle(self, source: FeedSource) -> str:
        return self.description(source)


def _feed_classes() -> dict[tuple[str, str], TorrentFeed]:
    views = {}
    for fmt, base in (("rss", TorrentFeed), ("atom", AtomTorrentFeed)):
        for kind in ("all", "category", "bookmarks"):
            views[(fmt, kind)] = type(f"{base.__name__}_{kind}", (base,), {"kind": kind})()
    return views


FEEDS = _feed_classes()
"""The six feed views: ``FEEDS[("rss" | "atom", "all" | "category" | "bookmarks")]``."""


def feed_download(request: HttpRequest, key: str, pk: int) -> HttpResponse:
    """The .torrent of a feed item for the member of ``key``, with their passkey inside
    (``torrent_download``): 404 for a wrong key or a torrent they may not see, 403 for a
    banned or inactive member or a refused download. No session needed."""
    member = feed_member(key)
    torrent = get_object_or_404(torrent_visible(viewer=member), pk=pk)
    try:
        data = torrent_services.torrent_download(torrent=torrent, member=member)
    except NotFound as err:
        raise Http404(err.message) from err
    except DomainError as err:
        return HttpResponse(err.message, status=err.status_code, content_type="text/plain")
    response = HttpResponse(data, content_type=BITTORRENT)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=torrent_services.torrent_filename(torrent)
    )
    response["Cache-Control"] = "private, no-store"
    return response


@member_required
def feed_page(request: HttpRequest) -> HttpResponse:
    """The member's feed URLs (RSS and Atom: all, each category, bookmarks) to copy into a
    feed reader or a client's RSS downloader."""
    key = feed_key_get(member=request.user)

    def urls(kind: str, *args: str) -> dict[str, str]:
        suffix = {"all": "", "category": "_category", "bookmarks": "_bookmarks"}[kind]
        return {
            fmt: _absolute(reverse(f"feed_{fmt}{suffix}", args=[key, *args]))
            for fmt in ("rss", "atom")
        }

    context = {
        "all": urls("all"),
        "bookmarks": urls("bookmarks"),
        "categories": [(c, urls("category", c.slug)) for c in Category.objects.all()],
    }
    return render(request, "tracker/feed_list.html", context)


@member_required
@form_post_only
def feed_key_reset_view(request: HttpRequest) -> HttpResponse:
    """Replace the member's feed key; every old feed URL stops working at once."""
    try:
        feed_key_reset(member=request.user)
    except DomainError as err:
        return refusal(request, title="Not allowed", message=err.message, status=err.status_code)
    messages.success(
        request, "Your feed key was replaced: copy the new feed URLs into your feed reader."
    )
    return redirect("feed_list")
