"""Admin for the receipts app: keys, reports, aggregate signatures and receipts.

Everything here is written by the services (key registration, report submission, the verify
task), so staff look but never edit: reports, aggregates and receipts are read-only for
everyone, superusers included. The one staff action is revoking a key (e.g. reported
stolen), which goes through ``bls_key_revoke`` and is audited with its reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ModeratorAccessMixin, ReadOnlyAdminMixin, with_reason
from receipts.models import AggregateSignature, BLSKey, Receipt, Report
from receipts.services.keys import bls_key_revoke


def _hex(value: bytes | memoryview | None) -> str:
    return bytes(value).hex() if value else "—"


class KeyStateFilter(admin.SimpleListFilter):
    """Active or revoked keys."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Two choices."""
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Filter on ``revoked_at``."""
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return None


@admin.register(BLSKey)
class BLSKeyAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Members' public keys and their history. Nothing is editable; the action revokes."""

    list_display = ("fingerprint", "member", "is_active", "created_at", "revoked_at")
    list_filter = (KeyStateFilter,)
    search_fields = ("member__username",)
    list_select_related = ("member",)
    raw_id_fields = ("member",)
    ordering = ("-created_at",)
    fields = (
        "member",
        "fingerprint",
        "public_key_hex",
        "pop_hex",
        "created_at",
        "revoked_at",
        "revoke_reason",
    )
    readonly_fields = fields
    actions = ("revoke_keys",)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Members register keys themselves (POST /register)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Keys are revoked, never deleted (receipts name them)."""
        return False

    @admin.display(description="public key (hex)")
    def public_key_hex(self, obj: BLSKey) -> str:
        """The 48-byte key in hex."""
        return _hex(obj.public_key)

    @admin.display(description="proof of possession (hex)")
    def pop_hex(self, obj: BLSKey) -> str:
        """The 96-byte proof in hex."""
        return _hex(obj.pop)

    @admin.display(boolean=True, description="active")
    def is_active(self, obj: BLSKey) -> bool:
        """Not revoked."""
        return obj.is_active

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[BLSKey]):
        """Ask for a reason, then revoke each key (audited)."""
        return with_reason(
            self,
            request,
            queryset,
            action="revoke_keys",
            title="Revoke keys",
            func=lambda key, reason: bls_key_revoke(key=key, actor=request.user, reason=reason),
            success="{count} key(s) revoked.",
        )


@admin.register(Report)
class ReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Reports with their counters; the receipts are one click away."""

    list_display = (
        "id",
        "reporter",
        "status",
        "received",
        "queued",
        "verified",
        "refused",
        "credited",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("reporter__username",)
    list_select_related = ("reporter",)
    raw_id_fields = ("reporter",)
    show_full_result_count = False
    ordering = ("-created_at",)
    fields = (
        "id",
        "reporter",
        "status",
        "received",
        "queued",
        "verified",
        "refused",
        "credited_bytes",
        "receipts_link",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="credited", ordering="credited_bytes")
    def credited(self, obj: Report) -> str:
        """Upload credited by the report."""
        return filesizeformat(obj.credited_bytes)

    @admin.display(description="receipts")
    def receipts_link(self, obj: Report) -> str:
        """A link to the report's receipts."""
        url = reverse("admin:receipts_receipt_changelist") + f"?report__id__exact={obj.pk}"
        return format_html('<a href="{}">{} receipt(s)</a>', url, obj.received)


@admin.register(AggregateSignature)
class AggregateSignatureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Aggregate signatures and their fate (shared by all their receipts)."""

    list_display = ("id", "report", "position", "size", "status", "reason")
    list_filter = ("status",)
    raw_id_fields = ("report",)
    show_full_result_count = False
    ordering = ("-id",)
    fields = ("report", "position", "size", "status", "reason", "signature_hex")
    readonly_fields = fields

    @admin.display(description="signature (hex)")
    def signature_hex(self, obj: AggregateSignature) -> str:
        """The 96-byte aggregate signature in hex."""
        return _hex(obj.signature)


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Receipts, read-only. Search by username, or by a receipt id (64 hex digits)."""

    list_display = (
        "receipt_id_hex",
        "report_id",
        "status",
        "reason",
        "uploader",
        "downloader",
        "torrent",
        "piece_index",
        "piece_length",
        "is_credited",
        "verified_at",
    )
    list_filter = ("status", "is_credited")
    search_fields = ("uploader__username", "downloader__username")
    list_select_related = ("uploader", "downloader", "torrent")
    raw_id_fields = ("report", "aggregate", "uploader", "downloader", "torrent")
    show_full_result_count = False
    ordering = ("-id",)
    fields = (
        "report",
        "aggregate",
        "position",
        "receipt_id_hex",
        "status",
        "reason",
        "is_credited",
        "uploader",
        "downloader",
        "torrent",
        "piece_index",
        "piece_length",
        "time_bucket",
        "data_hex",
        "signature_hex",
        "created_at",
        "verified_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Receipt]:
        """Leave the signed bytes out of the list query."""
        return super().get_queryset(request).defer("data", "signature")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """A 64-hex search term finds the receipt with that id; anything else searches the
        usernames."""
        term = search_term.strip().lower()
        if len(term) == 64:
            try:
                return queryset.filter(receipt_id=bytes.fromhex(term)), False
            except ValueError:
                pass
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="receipt id")
    def receipt_id_hex(self, obj: Receipt) -> str:
        """The 32-byte id in hex."""
        return _hex(obj.receipt_id)

    @admin.display(description="signed bytes (hex)")
    def data_hex(self, obj: Receipt) -> str:
        """The receipt bytes in hex."""
        return _hex(obj.data)

    @admin.display(description="signature (hex)")
    def signature_hex(self, obj: Receipt) -> str:
        """The 96-byte signature in hex (aggregated receipts have none of their own)."""
        return _hex(obj.signature)
