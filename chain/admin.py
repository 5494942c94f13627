"""Admin of the chain app: the chain's status (a clear word when the RPC is down, the chain id
is wrong, the account is out of funds or a transaction reverted), push batches, migrations and
members' on-chain records. Everything is read-only: the records are written by the services;
staff act through audited actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from chain.client import ChainError
from chain.models import ChainConfig, ChainMember, ChainStatus, Migration, PushBatch, PushItem
from chain.selectors import chain_overview
from chain.services.migration import migrations_send
from chain.services.push import chain_member_unblock, members_push
from core.admin import ReadOnlyAdminMixin
from core.audit import audit_record


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff look; nobody adds, edits or deletes these rows by hand (actions call services)."""


def _hex(value: bytes | memoryview | None) -> str:
    return f"0x{bytes(value).hex()}" if value else "—"


@admin.register(ChainConfig)
class ChainConfigAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status_badge", "status_detail", "checked_at", "chain_id")
    readonly_fields = (
        "status_badge",
        "status_detail",
        "checked_at",
        "chain_id",
        "factory_address",
        "reputation_address",
        "referrer_address",
        "owner_address",
        "overview",
        "lease_until",
        "created_at",
        "updated_at",
    )
    exclude = ("status", "lease_owner")
    actions = ["push_now"]

    @admin.display(description="status")
    def status_badge(self, obj: ChainConfig) -> str:
        ok = obj.status == ChainStatus.OK
        return format_html(
            '<strong style="color:{}">{}</strong>',
            "green" if ok else "#b00",
            obj.get_status_display(),
        )

    @admin.display(description="live check")
    def overview(self, obj: ChainConfig) -> str:
        lines = []
        for key, value in chain_overview(live=True, staff=True).items():
            if isinstance(value, dict):
                lines += [f"{key}.{k}: {v}" for k, v in value.items()]
            else:
                lines.append(f"{key}: {value}")
        return format_html("<pre>{}</pre>", "\n".join(lines))

    @admin.action(description="Send queued migrations and push changed members now")
    def push_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            migrations_send()
            result = members_push()
        except ChainError as exc:
            self.message_user(request, f"Chain: {exc.message}", level=messages.ERROR)
            return
        audit_record(
            actor=request.user,
            action="chain_push",
            target=queryset.first() or ChainConfig(pk=1),
            new={"pushed": result.pushed, "batches": len(result.batches)},
        )
        failed = [b for b in result.batches if b.tx_status == "failed"]
        level = messages.WARNING if failed or result.blocked else messages.SUCCESS
        self.message_user(
            request,
            f"{result.pushed} members pushed in {len(result.batches)} batches; "
            f"{len(failed)} failed; {len(result.blocked)} blocked.",
            level=level,
        )


class PushItemInline(admin.TabularInline):
    model = PushItem
    fields = ("member", "record_hex", "uploaded", "downloaded")
    readonly_fields = fields
    raw_id_fields = ("member",)
    extra = 0
    can_delete = False

    @admin.display(description="record id")
    def record_hex(self, obj: PushItem) -> str:
        return _hex(obj.record_id)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


TX_FIELDS = (
    "tx_status",
    "tx_hash_hex",
    "nonce",
    "chain_id",
    "contract_address",
    "block_number",
    "gas_limit",
    "gas_used",
    "max_fee",
    "broadcasts",
    "error",
    "created_at",
    "sent_at",
    "finished_at",
)


@admin.register(PushBatch)
class PushBatchAdmin(ReadOnlyAdmin):
    list_display = ("pk", "size", "tx_status", "block_number", "gas_used", "created_at", "error")
    list_filter = ("tx_status",)
    search_fields = ("contract_address",)
    readonly_fields = ("size", *TX_FIELDS)
    exclude = ("tx_hash", "raw_tx")
    inlines = [PushItemInline]
    show_full_result_count = False


@admin.register(Migration)
class MigrationAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "member",
        "status",
        "source_address",
        "imported_uploaded",
        "imported_downloaded",
        "created_at",
        "error",
    )
    list_filter = ("status",)
    search_fields = ("member__username",)
    raw_id_fields = ("member", "requested_by")
    readonly_fields = (
        "member",
        "requested_by",
        "status",
        "record_hex",
        "source_address",
        "imported_uploaded",
        "imported_downloaded",
        "expires_at",
        *TX_FIELDS,
    )
    exclude = ("tx_hash", "raw_tx", "public_key", "record_id", "challenge", "signature")

    @admin.display(description="record id")
    def record_hex(self, obj: Migration) -> str:
        return _hex(obj.record_id)


@admin.register(ChainMember)
class ChainMemberAdmin(ReadOnlyAdmin):
    list_display = (
        "member",
        "record_hex",
        "pushed_uploaded",
        "pushed_downloaded",
        "is_blocked",
        "failures",
        "pushed_at",
    )
    list_filter = ("is_blocked",)
    search_fields = ("member__username",)
    raw_id_fields = ("member",)
    readonly_fields = (
        "member",
        "record_hex",
        "pushed_uploaded",
        "pushed_downloaded",
        "pushed_at",
        "imported_from",
        "imported_at",
        "failures",
        "is_blocked",
        "last_error",
        "created_at",
        "updated_at",
    )
    exclude = ("record_id", "public_key")
    actions = ["unblock"]
    show_full_result_count = False

    @admin.display(description="record id")
    def record_hex(self, obj: ChainMember) -> str:
        return _hex(obj.record_id)

    @admin.action(description="Unblock: push these members again")
    def unblock(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for record in queryset.filter(is_blocked=True):
            chain_member_unblock(chain_member=record)
            audit_record(
                actor=request.user,
                action="chain_member_unblock",
                target=record,
                old={"is_blocked": True, "last_error": record.last_error},
                new={"is_blocked": False},
            )
            count += 1
        self.message_user(request, f"{count} members unblocked; they are pushed next run.")
