"""Admin for the reputation app: the ledger, read-only.

Ledger figures are written by the statistics flush and receipt verification, never by hand, so
nobody (superusers included) may add, change or delete a ledger here; staff may look.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from reputation.models import Ledger
from reputation.policy import ratio


def _is_moderator(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.is_moderator)


class RatioFilter(admin.SimpleListFilter):
    """Ledgers below the minimum ratio once past the grace allowance (exempt members aside)."""

    title = "ratio"
    parameter_name = "ratio"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Below the minimum, or within the rules."""
        return [("below", "Below minimum ratio"), ("ok", "Within the rules")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Apply ``MIN_RATIO`` after ``PBTS_RATIO_GRACE_BYTES``, skipping exempt members."""
        below = Q(
            downloaded__gt=settings.PBTS_RATIO_GRACE_BYTES,
            uploaded__lt=F("downloaded") * settings.MIN_RATIO,
            member__is_ratio_exempt=False,
        )
        if self.value() == "below":
            return queryset.filter(below)
        if self.value() == "ok":
            return queryset.exclude(below)
        return None


@admin.register(Ledger)
class LedgerAdmin(admin.ModelAdmin):
    """Per-member announced and verified figures; read-only."""

    list_display = (
        "member",
        "uploaded_display",
        "downloaded_display",
        "ratio_display",
        "verified_uploaded_display",
        "verified_downloaded_display",
        "seeding_hours",
        "updated_at",
    )
    list_filter = (RatioFilter, "member__is_ratio_exempt")
    search_fields = ("member__username",)
    list_select_related = ("member",)
    raw_id_fields = ("member",)
    show_full_result_count = False
    ordering = ("member__username",)
    fields = (
        "member",
        "uploaded",
        "downloaded",
        "seeding_seconds",
        "verified_uploaded",
        "verified_downloaded",
        "updated_at",
    )
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Staff see the app."""
        return _is_moderator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may look."""
        return _is_moderator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Ledgers are made with the member."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Figures are never edited by hand."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A ledger lives as long as its member."""
        return False

    @admin.display(description="uploaded", ordering="uploaded")
    def uploaded_display(self, obj: Ledger) -> str:
        """Announced upload."""
        return filesizeformat(obj.uploaded)

    @admin.display(description="downloaded", ordering="downloaded")
    def downloaded_display(self, obj: Ledger) -> str:
        """Announced download."""
        return filesizeformat(obj.downloaded)

    @admin.display(description="ratio")
    def ratio_display(self, obj: Ledger) -> str:
        """Announced share ratio; "∞" before any download."""
        value = ratio(obj.uploaded, obj.downloaded)
        return "∞" if value is None else f"{value:.2f}"

    @admin.display(description="verified uploaded", ordering="verified_uploaded")
    def verified_uploaded_display(self, obj: Ledger) -> str:
        """Receipt-backed upload."""
        return filesizeformat(obj.verified_uploaded)

    @admin.display(description="verified downloaded", ordering="verified_downloaded")
    def verified_downloaded_display(self, obj: Ledger) -> str:
        """Receipt-backed download."""
        return filesizeformat(obj.verified_downloaded)

    @admin.display(description="seeding (h)", ordering="seeding_seconds")
    def seeding_hours(self, obj: Ledger) -> str:
        """Total seeding time in hours."""
        return f"{obj.seeding_seconds / 3600:.1f}"
