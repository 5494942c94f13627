"""Admin of browse data (docs/browse-and-feeds.md): tags (staff rename or delete a bad one,
audited), bookmarks and feed keys (read-only: they are the members' own; the feed key itself
is never shown)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from core.admin import AuditedAdminMixin, ReadOnlyAdminMixin
from tracker.models import Bookmark, FeedKey, Tag


@admin.register(Tag)
class TagAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Tags with how many torrents carry them; a rename or delete is audited. Which torrents
    carry a tag is set from the torrent pages and the API."""

    audit_name = "tag"
    list_display = ("name", "torrent_count", "created_at")
    search_fields = ("name",)
    fields = ("name", "created_at")
    readonly_fields = ("created_at",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        """Tags with their torrent count (one query for the page)."""
        return super().get_queryset(request).annotate(torrent_total=Count("torrents"))

    @admin.display(description="torrents", ordering="torrent_total")
    def torrent_count(self, obj: Any) -> int:
        """Torrents carrying the tag (any status)."""
        return obj.torrent_total


@admin.register(Bookmark)
class BookmarkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Members' bookmarks (private on the site; staff may look here)."""

    list_display = ("member", "torrent", "created_at")
    search_fields = ("member__username", "torrent__name")
    list_select_related = ("member", "torrent")
    raw_id_fields = ("member", "torrent")
    show_full_result_count = False


@admin.register(FeedKey)
class FeedKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which members have a feed key and since when; the key is never shown (members replace
    it from the security page)."""

    list_display = ("member", "created_at")
    search_fields = ("member__username",)
    list_select_related = ("member",)
    fields = ("member", "created_at")
    readonly_fields = fields
    show_full_result_count = False
