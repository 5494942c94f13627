"""Admin of the site's settings-like tables: categories, the client whitelist, site pages
(edits audited by ``core.admin.AuditedAdminMixin``)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from core.admin import (
    AuditedAdminMixin,
)
from tracker import authcache
from tracker.models import (
    Category,
    ClientPrefix,
    SitePage,
)

# --- categories, client whitelist, site pages ----------------------------------------------


class CategoryUseFilter(admin.SimpleListFilter):
    """Categories with or without torrents."""

    title = "use"
    parameter_name = "use"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """In use or empty."""
        return [("used", "Has torrents"), ("empty", "Empty")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Filter on the torrent count annotation."""
        if self.value() == "used":
            return queryset.filter(torrent_count__gt=0)
        if self.value() == "empty":
            return queryset.filter(torrent_count=0)
        return None


@admin.register(Category)
class CategoryAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Torrent categories; edits are audited. A category with torrents cannot be deleted."""

    audit_name = "category"
    list_display = ("name", "slug", "position", "torrent_count")
    list_filter = (CategoryUseFilter,)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        """Categories with their torrent count."""
        return super().get_queryset(request).annotate(torrent_count=Count("torrents"))

    @admin.display(description="torrents", ordering="torrent_count")
    def torrent_count(self, obj: Category) -> int:
        """How many torrents (any status) the category holds."""
        return getattr(obj, "torrent_count", 0)


@admin.register(ClientPrefix)
class ClientPrefixAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """The client whitelist (BEP 20 peer_id prefixes); edits are audited."""

    audit_name = "client_prefix"
    list_display = ("prefix", "name", "is_allowed", "created_at")
    list_filter = ("is_allowed",)
    search_fields = ("prefix", "name")
    readonly_fields = ("id", "created_at")

    def _after_write(self) -> None:
        # The announce path caches the whitelist; every edit makes it re-read.
        authcache.invalidate_clients()


@admin.register(SitePage)
class SitePageAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Static pages (rules, FAQ) in Markdown; edits are audited."""

    audit_name = "site_page"
    list_display = ("slug", "title", "updated_at")
    list_filter = ("updated_at",)
    search_fields = ("slug", "title", "body")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("id", "updated_at")
