"""Admin of torrents and their statistics: moderation goes through
``tracker.services.torrents``; files, histories and statistics flushes are read-only."""

from __future__ import annotations

from collections.abc import Callable

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

EDITABLE_FIELDS = ("name", "category", "description")  # saved through ``torrent_update``
PROMOTION_FLAGS = ("is_freeleech", "is_double_upload")

Action = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Torrent]], object]


def _status_action(status: str, *, description: str, doc: str, success: str) -> Action:
    """A torrent admin action that sets ``status`` (a ``TorrentStatus``) on every selected
    torrent through ``torrent_moderate`` (audited), without a reason.

    Args:
        status: the status the torrents get.
        description: the action's label in the admin's action menu.
        doc: the action's docstring (what the status means for the torrents).
        success: the message after the run, formatted with ``count`` (torrents changed);
            refusals are reported one by one (``core.admin.run_each``).
    """

    @admin.action(description=description)
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Torrent]):
        run_each(
            modeladmin,
            request,
            queryset,
            lambda t: torrent_services.torrent_moderate(
                torrent=t, actor=request.user, status=status
            ),
            success=success,
        )

    action.__doc__ = doc
    return action


def _status_action_with_reason(
    name: str, status: str, *, description: str, doc: str, title: str
) -> Action:
    """A torrent admin action that first asks for a reason on a page of its own
    (``core.admin.with_reason``), then sets ``status`` (a ``TorrentStatus``) with that reason on
    every selected torrent through ``torrent_moderate`` (audited).

    Args:
        name: the attribute the action is bound to on the admin (the page posts it back).
        status: the status the torrents get.
        description: the action's label in the admin's action menu.
        doc: the action's docstring (what the status means for the torrents).
        title: the title of the page that asks for the reason.

    Returns:
        The action; it returns the reason page until a non-empty reason is posted, then None.
    """

    @admin.action(description=description)
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Torrent]):
        return with_reason(
            modeladmin,
            request,
            queryset,
            action=name,
            title=title,
            func=lambda t, reason: torrent_services.torrent_moderate(
                torrent=t, actor=request.user, status=status, reason=reason
            ),
            success=f"Set {{count}} torrent(s) to {status}.",
        )

    action.__doc__ = doc
    return action


def _promotion_action(
    flag: str, value: bool, *, description: str, doc: str, success: str
) -> Action:
    """A torrent admin action that sets one promotion flag on every selected torrent through
    ``torrent_set_promotion`` (audited), keeping the torrent's other flag as it is.

    Args:
        flag: ``"is_freeleech"`` or ``"is_double_upload"`` (``PROMOTION_FLAGS``).
        value: what the flag becomes.
        description: the action's label in the admin's action menu.
        doc: the action's docstring (what the flag means for the torrents).
        success: the message after the run, formatted with ``count`` (torrents changed);
            refusals are reported one by one (``core.admin.run_each``).

    Raises:
        ValueError: ``flag`` is not a promotion flag.
    """
    if flag not in PROMOTION_FLAGS:
        raise ValueError(f"not a promotion flag: {flag!r}")

    @admin.action(description=description)
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Torrent]):
        def apply(torrent: Torrent) -> None:
            values = {name: getattr(torrent, name) for name in PROMOTION_FLAGS}
            values[flag] = value
            torrent_services.torrent_set_promotion(torrent=torrent, actor=request.user, **values)

        run_each(modeladmin, request, queryset, apply, success=success)

    action.__doc__ = doc
    return action


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
    readonly_fields = tuple(name for name in fields if name not in EDITABLE_FIELDS)
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
            name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.changed_data
        }
        if changes:
            torrent_services.torrent_update(torrent=obj, actor=request.user, **changes)

    approve = _status_action(
        TorrentStatus.APPROVED,
        description="Approve selected torrents",
        doc="Status ``approved``: listed and tracked.",
        success="Approved {count} torrent(s).",
    )
    set_pending = _status_action(
        TorrentStatus.PENDING,
        description="Set selected torrents to pending",
        doc="Status ``pending``: hidden and untracked until approved.",
        success="Set {count} torrent(s) to pending.",
    )
    reject = _status_action_with_reason(
        "reject",
        TorrentStatus.REJECTED,
        description="Reject selected torrents (asks for a reason)",
        doc="Status ``rejected``, with a required reason.",
        title="Reject torrents",
    )
    soft_delete = _status_action_with_reason(
        "soft_delete",
        TorrentStatus.DELETED,
        description="Delete selected torrents (asks for a reason)",
        doc="Status ``deleted`` (the row stays), with a required reason.",
        title="Delete torrents",
    )
    set_freeleech = _promotion_action(
        "is_freeleech",
        True,
        description="Set freeleech on selected torrents",
        doc="Downloads of these torrents do not count.",
        success="Freeleech set on {count} torrent(s).",
    )
    unset_freeleech = _promotion_action(
        "is_freeleech",
        False,
        description="Remove freeleech from selected torrents",
        doc="Downloads count again.",
        success="Freeleech removed from {count} torrent(s).",
    )
    set_double_upload = _promotion_action(
        "is_double_upload",
        True,
        description="Set double upload on selected torrents",
        doc="Uploads of these torrents count twice.",
        success="Double upload set on {count} torrent(s).",
    )
    unset_double_upload = _promotion_action(
        "is_double_upload",
        False,
        description="Remove double upload from selected torrents",
        doc="Uploads count once again.",
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
