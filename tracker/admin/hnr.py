"""Admin of hit-and-runs (docs/hit-and-run.md): staff look and forgive; states are written by
``tracker.services.hnr`` only (nobody adds, edits or deletes rows here)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.admin import ModeratorAccessMixin, with_reason
from tracker.models import HitAndRun
from tracker.services.hnr import hnr_forgive


@admin.register(HitAndRun)
class HitAndRunAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Hit-and-runs by state; the action forgives the selected ones (a reason is asked for and
    audited; staff cannot forgive their own, nor a member of their rank)."""

    list_display = ("id", "member", "torrent", "state", "completed_at", "resolved_at")
    list_filter = ("state",)
    search_fields = ("member__username", "history__torrent__name", "=history__torrent__info_hash")
    list_select_related = ("member", "history__torrent")
    raw_id_fields = ("member", "history", "forgiven_by")
    show_full_result_count = False
    actions = ("forgive",)
    fields = (
        "id",
        "member",
        "history",
        "state",
        "resolved_at",
        "forgiven_by",
        "forgive_reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Rows are made by the evaluation only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows go with their snatch only (forgive instead)."""
        return False

    @admin.display(description="torrent")
    def torrent(self, obj: HitAndRun) -> str:
        """The snatched torrent's name."""
        return obj.history.torrent.name

    @admin.display(description="snatched", ordering="history__completed_at")
    def completed_at(self, obj: HitAndRun) -> Any:
        """When the download completed."""
        return obj.history.completed_at

    @admin.action(description="Forgive selected hit-and-runs")
    def forgive(
        self, request: HttpRequest, queryset: QuerySet[HitAndRun]
    ) -> TemplateResponse | None:
        """Forgive each (``hnr_forgive``); refused ones are reported one by one."""
        return with_reason(
            self,
            request,
            queryset.select_related("member"),
            action="forgive",
            title="Forgive hit-and-runs",
            func=lambda row, reason: hnr_forgive(
                hit_and_run=row, actor=request.user, reason=reason
            ),
            success="Forgave {count} hit-and-run(s).",
        )
