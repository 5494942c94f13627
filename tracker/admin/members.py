"""Admin of members: standing changes go through ``tracker.services.members``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin import (
    ModeratorAccessMixin,
    concrete_changed,
    field_values,
    run_each,
    with_reason,
)
from core.audit import audit_record
from core.two_factor import two_factor_reset
from reputation.admin import RatioFilter
from tracker import authcache
from tracker.models import (
    Member,
)
from tracker.services import members as member_services

# --- members ------------------------------------------------------------------------------

# django-otp's own device admins would let a superuser read or plant another member's TOTP key
# and recovery codes: the member admin shows only whether a member has two-factor
# authentication, and a superuser may reset it (audited, core.two_factor.two_factor_reset).
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


class MemberAddForm(AdminUserCreationForm):
    """The standard add form, but the member is made by ``member_create`` (passkey, API token,
    ledger). "Password-based authentication: disabled" leaves no usable password."""

    class Meta(AdminUserCreationForm.Meta):
        model = Member
        fields = ("username", "email")

    def save(self, commit: bool = True) -> Member:
        """Create the member through the service (always saved)."""
        password = None
        if self.cleaned_data.get("set_usable_password"):
            password = self.cleaned_data.get("password1") or None
        member = member_services.member_create(
            username=self.cleaned_data["username"],
            email=self.cleaned_data.get("email", ""),
            password=password,
        )
        self.instance = member
        self.save_m2m = lambda: None  # no many-to-many fields on this form
        return member


class MemberChangeForm(UserChangeForm):
    """The change form; a ban needs a reason, lifting one clears it."""

    class Meta(UserChangeForm.Meta):
        model = Member

    def clean(self) -> dict[str, Any]:
        """A ban without a reason is refused; an unbanned member keeps no ban reason."""
        cleaned = super().clean()
        if "is_banned" in self.fields and "ban_reason" in self.fields:
            if cleaned.get("is_banned"):
                if not (cleaned.get("ban_reason") or "").strip():
                    self.add_error("ban_reason", "A ban needs a reason.")
            else:
                cleaned["ban_reason"] = ""
        return cleaned


class LedgerFigureFilter(RatioFilter):
    """Members below the minimum ratio, by the ledger's one definition of the rule."""

    on = "member"


STANDING_FIELDS = member_services.STANDING_FIELDS
# Fields only the owner (a superuser) may change: who is staff, who has which permissions.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(Member)
class MemberAdmin(ModeratorAccessMixin, UserAdmin):
    """Members: standing changes go through ``member_moderate``; actions ban, unban, reset the
    passkey and switch downloading. The password hash and API token are never shown."""

    form = MemberChangeForm
    add_form = MemberAddForm
    list_display = (
        "username",
        "email",
        "member_class",
        "uploaded",
        "downloaded",
        "is_banned",
        "can_download",
        "is_ratio_exempt",
        "is_staff",
        "two_factor",
        "created_at",
    )
    list_filter = (
        "is_banned",
        "can_download",
        "member_class",
        "is_staff",
        "is_ratio_exempt",
        "is_active",
        LedgerFigureFilter,
    )
    search_fields = ("username", "email", "=passkey")
    ordering = ("username",)
    raw_id_fields = ("invited_by",)
    readonly_fields = (
        "id",
        "passkey",
        "uploaded",
        "downloaded",
        "verified_uploaded",
        "verified_downloaded",
        "last_login",
        "date_joined",
        "created_at",
        "updated_at",
    )
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("id", "username", "passkey")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        (
            "Standing",
            {
                "fields": (
                    "member_class",
                    "is_banned",
                    "ban_reason",
                    "can_download",
                    "is_ratio_exempt",
                    "invites_left",
                    "invited_by",
                ),
                "description": "Changes here are audited and take effect on the tracker at "
                "once. Reset the passkey with the list's action.",
            },
        ),
        (
            "Ledger",
            {
                "fields": (
                    "uploaded",
                    "downloaded",
                    "verified_uploaded",
                    "verified_downloaded",
                )
            },
        ),
        ("Permissions", {"fields": ("is_active", *PRIVILEGE_FIELDS)}),
        ("Dates", {"fields": ("last_login", "date_joined", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "email", "usable_password", "password1", "password2"),
            },
        ),
    )
    actions = (
        "ban_members",
        "unban_members",
        "reset_passkeys",
        "enable_downloading",
        "disable_downloading",
        "reset_two_factor",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        """Members with their ledger figures in the same query."""
        return (
            super()
            .get_queryset(request)
            .annotate(
                ledger_uploaded=F("ledger__uploaded"),
                ledger_downloaded=F("ledger__downloaded"),
                ledger_verified_uploaded=F("ledger__verified_uploaded"),
                ledger_verified_downloaded=F("ledger__verified_downloaded"),
                has_two_factor=Exists(
                    TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
                ),
            )
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Only superusers see the two-factor reset."""
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("reset_two_factor", None)
        return actions

    @admin.display(description="2FA", boolean=True, ordering="has_two_factor")
    def two_factor(self, obj: Member) -> bool:
        """The member has two-factor authentication (a confirmed authenticator app)."""
        return bool(getattr(obj, "has_two_factor", False))

    def get_fieldsets(self, request: HttpRequest, obj: Member | None = None) -> Any:
        """A superuser also sees Django's "Set password" / "Reset password" link (masked
        summary, never the hash) on an existing member; only superusers may set passwords."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not request.user.is_superuser:
            return fieldsets
        (name, options), *rest = fieldsets
        fields = ("id", "username", "password", "passkey")
        return ((name, {**options, "fields": fields}), *rest)

    def get_readonly_fields(self, request: HttpRequest, obj: Member | None = None) -> tuple:
        """Only superusers grant staff, superuser or permissions."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += PRIVILEGE_FIELDS
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Member | None = None) -> bool:
        """Staff change members of a lower rank (``member_services.moderation_check``): a
        moderator only views another moderator, and only a superuser changes a superuser. On
        their own page staff may edit their details; the service refuses standing changes."""
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or obj.pk == request.user.pk:
            return True
        return member_services.may_moderate(actor=request.user, member=obj)

    def has_delete_permission(self, request: HttpRequest, obj: Member | None = None) -> bool:
        """Members are banned or deactivated, never deleted from the admin (the audit trail,
        ledger and invite tree refer to them)."""
        return False

    @staticmethod
    def _figure(value: int | None) -> str:
        return "-" if value is None else filesizeformat(value)

    @admin.display(description="uploaded", ordering="ledger_uploaded")
    def uploaded(self, obj: Member) -> str:
        """Announced upload (ledger)."""
        return self._figure(getattr(obj, "ledger_uploaded", None))

    @admin.display(description="downloaded", ordering="ledger_downloaded")
    def downloaded(self, obj: Member) -> str:
        """Announced download (ledger)."""
        return self._figure(getattr(obj, "ledger_downloaded", None))

    @admin.display(description="verified uploaded")
    def verified_uploaded(self, obj: Member) -> str:
        """Receipt-backed upload (ledger)."""
        return self._figure(getattr(obj, "ledger_verified_uploaded", None))

    @admin.display(description="verified downloaded")
    def verified_downloaded(self, obj: Member) -> str:
        """Receipt-backed download (ledger)."""
        return self._figure(getattr(obj, "ledger_verified_downloaded", None))

    def save_model(self, request: HttpRequest, obj: Member, form: forms.ModelForm, change: bool):
        """New members were made by the add form (``member_create``): audit the creation.

        For an existing member, standing fields go through ``member_moderate`` (audited, auth
        cache invalidated); other changed fields are saved and audited here."""
        if not change:
            audit_record(
                actor=request.user,
                action="member_create",
                target=obj,
                new={"username": obj.username, "email": obj.email},
            )
            return
        current = Member.objects.get(pk=obj.pk)
        standing = {
            name: getattr(obj, name)
            for name in STANDING_FIELDS
            if getattr(obj, name) != getattr(current, name)
        }
        others = [
            name for name in concrete_changed(obj, form.changed_data) if name not in STANDING_FIELDS
        ]
        if others:
            obj.save(update_fields=[*others, "updated_at"])
            audit_record(
                actor=request.user,
                action="member_change",
                target=obj,
                old=field_values(current, others),
                new=field_values(obj, others),
            )
            if "is_active" in others:
                authcache.invalidate_passkey(current.passkey)
        if standing:
            if "is_banned" in standing:
                action = "member_ban" if standing["is_banned"] else "member_unban"
            else:
                action = "member_moderate"
            reason = obj.ban_reason if standing.get("is_banned") else ""
            member_services.member_moderate(
                member=current, actor=request.user, action=action, reason=reason, **standing
            )

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        """Save groups and permissions, auditing a change of either."""
        m2m = [name for name in ("groups", "user_permissions") if name in form.changed_data]
        member = form.instance
        old = {name: sorted(str(o) for o in getattr(member, name).all()) for name in m2m}
        super().save_related(request, form, formsets, change)
        if change and m2m:
            new = {name: sorted(str(o) for o in getattr(member, name).all()) for name in m2m}
            if old != new:
                audit_record(
                    actor=request.user,
                    action="member_permissions_change",
                    target=member,
                    old=old,
                    new=new,
                )

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""):
        """Only a superuser sets another member's password; a change is audited (masked)."""
        if not request.user.is_superuser:
            raise PermissionDenied
        before = Member.objects.filter(pk=id).values_list("password", flat=True).first()
        response = super().user_change_password(request, id, form_url)
        member = Member.objects.filter(pk=id).first()
        if request.method == "POST" and member is not None and member.password != before:
            audit_record(
                actor=request.user,
                action="password_set",
                target=member,
                new={"password": "set" if member.has_usable_password() else "unusable"},
            )
        return response

    # -- actions --

    @admin.action(description="Ban selected members (asks for a reason)")
    def ban_members(self, request: HttpRequest, queryset: QuerySet[Member]):
        """Ban after asking for a required reason."""
        return with_reason(
            self,
            request,
            queryset,
            action="ban_members",
            title="Ban members",
            func=lambda m, reason: member_services.member_ban(
                member=m, actor=request.user, reason=reason
            ),
            success="Banned {count} member(s).",
        )

    @admin.action(description="Unban selected members")
    def unban_members(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        """Lift bans."""
        run_each(
            self,
            request,
            queryset,
            lambda m: member_services.member_unban(member=m, actor=request.user),
            success="Unbanned {count} member(s).",
        )

    @admin.action(description="Reset passkeys of selected members")
    def reset_passkeys(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        """New passkeys; the old ones stop working at once."""
        run_each(
            self,
            request,
            queryset,
            lambda m: member_services.passkey_reset(member=m, actor=request.user),
            success="Reset the passkey of {count} member(s); their old announce URLs no "
            "longer work.",
        )

    @admin.action(description="Enable downloading for selected members")
    def enable_downloading(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        """Allow leeching and .torrent downloads."""
        run_each(
            self,
            request,
            queryset,
            lambda m: member_services.member_set_downloading(
                member=m, actor=request.user, enabled=True
            ),
            success="Enabled downloading for {count} member(s).",
        )

    @admin.action(description="Disable downloading for selected members")
    def disable_downloading(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        """Refuse leeching and .torrent downloads."""
        run_each(
            self,
            request,
            queryset,
            lambda m: member_services.member_set_downloading(
                member=m, actor=request.user, enabled=False
            ),
            success="Disabled downloading for {count} member(s).",
        )

    @admin.action(description="Reset two-factor authentication of selected members (superuser)")
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[Member]):
        """Remove the members' authenticator app and recovery codes after asking for a reason
        (audited); superusers only (``two_factor_reset`` refuses anyone else)."""
        if not request.user.is_superuser:
            raise PermissionDenied
        return with_reason(
            self,
            request,
            queryset,
            action="reset_two_factor",
            title="Reset two-factor authentication",
            func=lambda m, reason: two_factor_reset(member=m, actor=request.user, reason=reason),
            success="Reset two-factor authentication of {count} member(s); they log in with "
            "their password alone until they set it up again.",
        )
