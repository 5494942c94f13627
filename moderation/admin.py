"""Admin of reports, warnings, staff notes and class locks. Workflow changes go through
``moderation/services`` (actions), so they are audited like the pages' ones; other edits are
audited by ``core.admin.AuditedAdminMixin``."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import AuditedAdminMixin, ModeratorAccessMixin, run_each, with_reason
from moderation.models import ClassLock, MemberWarning, Report, ReportStatus, StaffNote
from moderation.selectors import warning_state
from moderation.services import reports, warnings


@admin.register(Report)
class ReportAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Reports: read here, claimed and closed with the actions (audited, reporter notified)."""

    list_display = ("id", "created_at", "status", "category", "reporter", "torrent", "member")
    list_filter = ("status", "category")
    search_fields = ("=id", "reporter__username", "member__username", "torrent__name")
    raw_id_fields = ("reporter", "torrent", "member", "claimed_by", "resolved_by")
    list_select_related = ("reporter", "torrent", "member")
    show_full_result_count = False
    readonly_fields = (
        "reporter",
        "torrent",
        "member",
        "category",
        "text",
        "status",
        "claimed_by",
        "claimed_at",
        "resolved_by",
        "resolved_at",
        "resolution",
        "created_at",
        "updated_at",
    )
    actions = ("claim", "resolve", "dismiss")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Members file reports on the site; staff do not add them here."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Report | None = None) -> bool:
        """Reports are kept (dismiss one instead)."""
        return False

    @admin.action(description="Claim selected reports")
    def claim(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        run_each(
            self,
            request,
            queryset,
            lambda r: reports.report_claim(report=r, actor=request.user),
            success="Claimed {count} report(s).",
        )

    def _close(self, request: HttpRequest, queryset: QuerySet[Report], action: str, status: str):
        return with_reason(
            self,
            request,
            queryset,
            action=action,
            title=f"Report(s) {status}: the note the reporter reads",
            func=lambda r, note: reports.report_close(
                report=r, actor=request.user, status=status, resolution=note
            ),
            success=f"{status.capitalize()} {{count}} report(s).",
        )

    @admin.action(description="Resolve selected reports (with a note)")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Report]):
        return self._close(request, queryset, "resolve", ReportStatus.RESOLVED)

    @admin.action(description="Dismiss selected reports (with a note)")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Report]):
        return self._close(request, queryset, "dismiss", ReportStatus.DISMISSED)


@admin.register(MemberWarning)
class MemberWarningAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Warnings: issued on the member's moderation page; revoked here (action) or there."""

    list_display = ("id", "member", "issued_by", "created_at", "expires_at", "state")
    list_filter = ("created_at",)
    search_fields = ("member__username", "reason")
    raw_id_fields = ("member", "issued_by", "revoked_by")
    list_select_related = ("member", "issued_by")
    show_full_result_count = False
    readonly_fields = (
        "member",
        "issued_by",
        "reason",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
    )
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Warnings are issued through the service (the member's moderation page, the API)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MemberWarning | None = None):
        """Warnings are kept (revoke one instead)."""
        return False

    @admin.display(description="state")
    def state(self, obj: MemberWarning) -> str:
        return warning_state(obj)

    @admin.action(description="Revoke selected warnings (with a reason)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[MemberWarning]):
        return with_reason(
            self,
            request,
            queryset,
            action="revoke",
            title="Revoke warning(s)",
            func=lambda w, reason: warnings.warning_revoke(
                warning=w, actor=request.user, reason=reason
            ),
            success="Revoked {count} warning(s).",
        )


@admin.register(StaffNote)
class StaffNoteAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Staff notes (staff only; the member never sees them). Edits and deletions audited."""

    audit_name = "staff_note"
    list_display = ("id", "member", "author", "created_at")
    search_fields = ("member__username", "body")
    raw_id_fields = ("member", "author")
    list_select_related = ("member", "author")
    readonly_fields = ("created_at",)
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        """A new note's author is the staff member writing it."""
        if not change and obj.author_id is None:
            obj.author = request.user
        super().save_model(request, obj, form, change)


@admin.register(ClassLock)
class ClassLockAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Class locks: members whose class the automatic rules never change. Audited."""

    audit_name = "class_lock"
    list_display = ("member", "locked_by", "reason", "created_at")
    search_fields = ("member__username",)
    raw_id_fields = ("member", "locked_by")
    list_select_related = ("member", "locked_by")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj, form, change):
        """A new lock records who set it."""
        if not change and obj.locked_by_id is None:
            obj.locked_by = request.user
        super().save_model(request, obj, form, change)
