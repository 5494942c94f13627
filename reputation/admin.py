"""Admin for the reputation app: the ledger, read-only.

Ledger figures are written by ``reputation.services`` (the statistics flush, receipt verification
and chain migrations call it), never by hand, so
nobody (superusers included) may add, change or delete a ledger here; staff may look. Announced
upload is shown beside receipt-verified upload, and a filter flags large gaps: a client that
reports far more upload than other members' receipts back is probably lying.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from django import forms
from django.contrib import admin, messages
from django.db.models import BooleanField, ExpressionWrapper, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse

from core.admin import ReadOnlyAdminMixin, action_form_page
from core.errors import DomainError
from reputation.models import BonusAccount, BonusTransaction, Ledger
from reputation.policy import ratio
from reputation.selectors import below_min_ratio, upload_gap
from reputation.services import MILLI, bonus_adjust


class RatioFilter(admin.SimpleListFilter):
    """Ledgers below the minimum ratio once past the grace allowance (exempt members aside)."""

    title = "ratio"
    parameter_name = "ratio"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Below the minimum, or within the rules."""
        return [("below", "Below minimum ratio"), ("ok", "Within the rules")]

    #: The queryset's model, for :func:`reputation.selectors.below_min_ratio`.
    on: Literal["ledger", "member"] = "ledger"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Apply :func:`reputation.selectors.below_min_ratio` (the one definition)."""
        below = below_min_ratio(on=self.on)
        if self.value() == "below":
            return queryset.filter(below)
        if self.value() == "ok":
            return queryset.exclude(below)
        return None


class ClampedFilter(admin.SimpleListFilter):
    """Members one of whose announces claimed more bytes than the rate bound allows (the
    statistics flush cut it and counted it: ``Ledger.clamped_announces``)."""

    title = "announces cut to the rate bound"
    parameter_name = "clamped"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Flagged, or not."""
        return [("yes", "Claimed too much (suspect)"), ("no", "Never")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """``clamped_announces`` above zero, or zero."""
        if self.value() == "yes":
            return queryset.filter(clamped_announces__gt=0)
        if self.value() == "no":
            return queryset.filter(clamped_announces=0)
        return None


class UploadGapFilter(admin.SimpleListFilter):
    """Announced upload far above receipt-verified upload (see :func:`upload_gap`)."""

    title = "announced vs verified upload"
    parameter_name = "upload_gap"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        """Flagged, or not."""
        return [("gap", "Large gap (suspect)"), ("ok", "Backed by receipts")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        """Apply :func:`upload_gap`."""
        if self.value() == "gap":
            return queryset.filter(upload_gap())
        if self.value() == "ok":
            return queryset.exclude(upload_gap())
        return None


@admin.register(Ledger)
class LedgerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per-member announced and verified figures; read-only."""

    list_display = (
        "member",
        "uploaded_display",
        "downloaded_display",
        "ratio_display",
        "verified_uploaded_display",
        "verified_downloaded_display",
        "upload_gap_flag",
        "seeding_hours",
        "updated_at",
    )
    list_filter = (RatioFilter, UploadGapFilter, ClampedFilter, "member__is_ratio_exempt")
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
        "upload_gap_flag",
        "imported_uploaded",
        "imported_downloaded",
        "clamped_announces",
        "clamped_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ledger]:
        """Ledgers with the upload-gap flag computed by the database (:func:`upload_gap`)."""
        flag = ExpressionWrapper(upload_gap(), output_field=BooleanField())
        return super().get_queryset(request).annotate(has_upload_gap=flag)

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

    @admin.display(boolean=True, description="upload gap")
    def upload_gap_flag(self, obj: Ledger) -> bool:
        """Announced upload far above verified upload (see :func:`upload_gap`)."""
        return obj.has_upload_gap

    @admin.display(description="seeding (h)", ordering="seeding_seconds")
    def seeding_hours(self, obj: Ledger) -> str:
        """Total seeding time in hours."""
        return f"{obj.seeding_seconds / 3600:.1f}"


# --- bonus points (docs/bonus.md) -----------------------------------------------------------


class BonusAdjustForm(forms.Form):
    """A staff adjustment: points to add (negative to take) and the reason (audited)."""

    points = forms.DecimalField(
        max_digits=15,
        decimal_places=3,
        help_text="Points to add to each selected balance; negative to take points away.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        max_length=255,
        help_text="Recorded in the audit log and shown to the member in their transactions.",
    )


@admin.register(BonusAccount)
class BonusAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Bonus balances, read-only; the one way to change one here is the audited
    "Adjust balance" action (``reputation.services.bonus_adjust``)."""

    list_display = ("member", "balance_points", "updated_at")
    search_fields = ("member__username",)
    list_select_related = ("member",)
    raw_id_fields = ("member",)
    show_full_result_count = False
    ordering = ("-balance",)
    fields = ("member", "balance", "updated_at")
    readonly_fields = fields
    actions = ["adjust"]

    @admin.display(description="balance (points)", ordering="balance")
    def balance_points(self, obj: BonusAccount) -> str:
        """The balance in points."""
        return f"{obj.balance / MILLI:,.3f}"

    def get_actions(self, request: HttpRequest) -> dict:
        """The adjust action, for moderators (the service checks the actor again)."""
        actions = super().get_actions(request)
        if not getattr(request.user, "is_moderator", False):
            actions.pop("adjust", None)
        return actions

    @admin.action(description="Adjust balance (asks for points and a reason)")
    def adjust(
        self, request: HttpRequest, queryset: QuerySet[BonusAccount]
    ) -> TemplateResponse | None:
        """Ask for the points and a reason, then adjust each selected balance."""
        queryset = queryset.select_related("member")
        if "apply" in request.POST:
            form = BonusAdjustForm(request.POST)
            if form.is_valid():
                amount = int(form.cleaned_data["points"] * Decimal(MILLI))
                reason = form.cleaned_data["reason"]
                done = 0
                for account in queryset:
                    try:
                        bonus_adjust(
                            actor=request.user, member=account.member, amount=amount, reason=reason
                        )
                    except DomainError as exc:
                        self.message_user(request, f"{account}: {exc.message}", messages.ERROR)
                    else:
                        done += 1
                if done:
                    self.message_user(request, f"Adjusted {done} balance(s).", messages.SUCCESS)
                return None
        else:
            form = BonusAdjustForm()
        return action_form_page(
            self, request, queryset, action="adjust", title="Adjust bonus balances", form=form
        )


@admin.register(BonusTransaction)
class BonusTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every movement of bonus points, append-only: nobody adds, changes or deletes one."""

    list_display = ("created_at", "member", "kind", "amount_points", "balance_points", "reference")
    list_filter = ("kind",)
    search_fields = ("member__username", "reference")
    list_select_related = ("member",)
    raw_id_fields = ("member", "actor")
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = ("member", "kind", "amount", "balance_after", "reference", "actor", "created_at")
    readonly_fields = fields

    @admin.display(description="points", ordering="amount")
    def amount_points(self, obj: BonusTransaction) -> str:
        """The amount in points."""
        return f"{obj.amount / MILLI:+,.3f}"

    @admin.display(description="balance after")
    def balance_points(self, obj: BonusTransaction) -> str:
        """The balance once applied, in points."""
        return f"{obj.balance_after / MILLI:,.3f}"
