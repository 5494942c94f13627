"""Admin of torrents and their statistics: moderation goes through
``tracker.services.torrents``; files, histories and statistics flushes are read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from core.admin import (
    ModeratorAccessMixin,
    ReadOnlyAdminMixin,
    run_each,
    with_reason,
)
from tracker.models import (
    StatsFlush,
    Torrent,
    TorrentFile,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services import torrents as torrent_services

# --- torrents -----------------------------------------------------------------------------


@admin.register(Torrent)
class TorrentAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Torrents: moderation and promotions through actions (``torrent_moderate``,
    ``torrent_set_promotion``); name, description and category are edited through
    ``torrent_update`` (audited). No hard delete: "delete" is the soft ``deleted`` status
    with a reason."""

    list_display = (
        "name",
        "info_hash",
        "category",
        "uploader",
        "status",
        "size_display",
        "seeders",
        "leechers",
        "snatches",
        "is_freeleech",
        "created_at",
    )
    list_filter = ("status", "category", "is_freeleech", "is_double_upload", "is_hybrid")
    search_fields = ("name", "^info_hash")
    list_select_related = ("category", "uploader")
    raw_id_fields = ("uploader",)
    show_full_result_count = False
    exclude = ("metainfo",)
    fields = (
        "id",
        "name",
        "info_hash",
        "category",
        "description",
        "uploader",
        "status",
        "moderation_reason",
        "is_freeleech",
        "is_double_upload",
        "size_display",
        "piece_length",
        "piece_count",
        "files_link",
        "is_hybrid",
        "seeders",
        "leechers",
        "snatches",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "id",
        "info_hash",
        "uploader",
        "status",
        "moderation_reason",
        "is_freeleech",
        "is_double_upload",
        "size_display",
        "piece_length",
        "piece_count",
        "files_link",
        "is_hybrid",
        "seeders",
        "leechers",
        "snatches",
        "created_at",
        "updated_at",
    )
    actions = (
        "approve",
        "set_pending",
        "reject",
        "soft_delete",
        "set_freeleech",
        "unset_freeleech",
        "set_double_upload",
        "unset_double_upload",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Torrent]:
        """Torrents without the metainfo blob."""
        return super().get_queryset(request).defer("metainfo")

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Torrents are uploaded through the site, which rewrites the metainfo."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Torrent | None = None) -> bool:
        """No hard delete; use the "delete" action (status ``deleted``, with a reason)."""
        return False

    @admin.display(description="size", ordering="size")
    def size_display(self, obj: Torrent) -> str:
        """Total size, human-readable."""
        return filesizeformat(obj.size)

    @admin.display(description="files")
    def files_link(self, obj: Torrent) -> str:
        """The file count, linked to the torrent's files in their own (paginated) list: a
        torrent may list thousands, too many for an inline."""
        url = reverse("admin:tracker_torrentfile_changelist")
        return format_html(
            '<a href="{}?torrent__id__exact={}">{} file{}</a>',
            url,
            obj.pk,
            f"{obj.file_count:,}",
            "" if obj.file_count == 1 else "s",
        )

    def save_model(self, request: HttpRequest, obj: Torrent, form: forms.ModelForm, change: bool):
        """Save the edited name, description and category through ``torrent_update``."""
        changes = {
            name: form.cleaned_data[name]
            for name in ("name", "description", "category")
            if name in form.changed_data
        }
        if changes:
            torrent_services.torrent_update(torrent=obj, actor=request.user, **changes)

    def _moderate(self, request: HttpRequest, queryset: QuerySet, status: str, success: str):
        services = torrent_services
        run_each(
            self,
            request,
            queryset,
            lambda t: services.torrent_moderate(torrent=t, actor=request.user, status=status),
            success=success,
        )

    def _moderate_with_reason(
        self, request: HttpRequest, queryset: QuerySet, *, action: str, status: str, title: str
    ):
        services = torrent_services
        return with_reason(
            self,
            request,
            queryset,
            action=action,
            title=title,
            func=lambda t, reason: services.torrent_moderate(
                torrent=t, actor=request.user, status=status, reason=reason
            ),
            success=f"Set {{count}} torrent(s) to {status}.",
        )

    def _promote(self, request: HttpRequest, queryset: QuerySet, *, success: str, **flags: bool):
        services = torrent_services

        def apply(torrent: Torrent) -> None:
            values = {
                "is_freeleech": torrent.is_freeleech,
                "is_double_upload": torrent.is_double_upload,
                **flags,
            }
            services.torrent_set_promotion(torrent=torrent, actor=request.user, **values)

        run_each(self, request, queryset, apply, success=success)

    @admin.action(description="Approve selected torrents")
    def approve(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Status ``approved``: listed and tracked."""
        self._moderate(request, queryset, TorrentStatus.APPROVED, "Approved {count} torrent(s).")

    @admin.action(description="Set selected torrents to pending")
    def set_pending(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Status ``pending``: hidden and untracked until approved."""
        self._moderate(
            request, queryset, TorrentStatus.PENDING, "Set {count} torrent(s) to pending."
        )

    @admin.action(description="Reject selected torrents (asks for a reason)")
    def reject(self, request: HttpRequest, queryset: QuerySet[Torrent]):
        """Status ``rejected``, with a required reason."""
        return self._moderate_with_reason(
            request,
            queryset,
            action="reject",
            status=TorrentStatus.REJECTED,
            title="Reject torrents",
        )

    @admin.action(description="Delete selected torrents (asks for a reason)")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[Torrent]):
        """Status ``deleted`` (the row stays), with a required reason."""
        return self._moderate_with_reason(
            request,
            queryset,
            action="soft_delete",
            status=TorrentStatus.DELETED,
            title="Delete torrents",
        )

    @admin.action(description="Set freeleech on selected torrents")
    def set_freeleech(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Downloads of these torrents do not count."""
        self._promote(
            request, queryset, is_freeleech=True, success="Freeleech set on {count} torrent(s)."
        )

    @admin.action(description="Remove freeleech from selected torrents")
    def unset_freeleech(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Downloads count again."""
        self._promote(
            request,
            queryset,
            is_freeleech=False,
            success="Freeleech removed from {count} torrent(s).",
        )

    @admin.action(description="Set double upload on selected torrents")
    def set_double_upload(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Uploads of these torrents count twice."""
        self._promote(
            request,
            queryset,
            is_double_upload=True,
            success="Double upload set on {count} torrent(s).",
        )

    @admin.action(description="Remove double upload from selected torrents")
    def unset_double_upload(self, request: HttpRequest, queryset: QuerySet[Torrent]) -> None:
        """Uploads count once again."""
        self._promote(
            request,
            queryset,
            is_double_upload=False,
            success="Double upload removed from {count} torrent(s).",
        )


@admin.register(TorrentFile)
class TorrentFileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Files of all torrents, read-only (search a path across torrents)."""

    list_display = ("path", "torrent", "size_display")
    search_fields = ("path",)
    list_filter = ("torrent__status",)
    raw_id_fields = ("torrent",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[TorrentFile]:
        """Files with their torrent, without its metainfo blob."""
        return super().get_queryset(request).select_related("torrent").defer("torrent__metainfo")

    @admin.display(description="size", ordering="size")
    def size_display(self, obj: TorrentFile) -> str:
        """File size, human-readable."""
        return filesizeformat(obj.size)


@admin.register(TorrentHistory)
class TorrentHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-member, per-torrent statistics, read-only (written by the statistics flush)."""

    list_display = (
        "member",
        "torrent",
        "uploaded_display",
        "downloaded_display",
        "seed_hours",
        "completed_at",
        "updated_at",
    )
    list_filter = (("completed_at", admin.EmptyFieldListFilter),)
    search_fields = ("member__username", "=torrent__info_hash")
    raw_id_fields = ("member", "torrent")
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[TorrentHistory]:
        """Rows with member and torrent, without the metainfo blob."""
        return (
            super()
            .get_queryset(request)
            .select_related("member", "torrent")
            .defer("torrent__metainfo")
        )

    @admin.display(description="uploaded", ordering="uploaded")
    def uploaded_display(self, obj: TorrentHistory) -> str:
        """Uploaded on this torrent."""
        return filesizeformat(obj.uploaded)

    @admin.display(description="downloaded", ordering="downloaded")
    def downloaded_display(self, obj: TorrentHistory) -> str:
        """Downloaded on this torrent."""
        return filesizeformat(obj.downloaded)

    @admin.display(description="seeding (h)", ordering="seed_seconds")
    def seed_hours(self, obj: TorrentHistory) -> str:
        """Seeding time in hours."""
        return f"{obj.seed_seconds / 3600:.1f}"


@admin.register(StatsFlush)
class StatsFlushAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Applied statistics batches, read-only."""

    list_display = ("batch_id", "members", "torrents", "created_at")
    list_filter = ("created_at",)
    search_fields = ("=batch_id",)
    show_full_result_count = False
    readonly_fields = ("id", "batch_id", "members", "torrents", "created_at")
