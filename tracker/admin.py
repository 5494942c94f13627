"""Django admin: the moderators' tool.

Every staff member (``Member.is_moderator``) may moderate, as the services allow; Django's
per-model permissions are not used. Moderation goes through the services in
``tracker/services`` (admin actions, and ``save_model`` for fields the services own), so each
change is audited and the announce path's cache is invalidated. Edits the services do not cover
(categories, the client whitelist, site pages, other member fields) are audited here. The audit
log itself is read-only for everyone, superusers included.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models, transaction
from django.db.models import Count, F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from rest_framework.authtoken.admin import TokenProxy

from reputation.admin import RatioFilter
from tracker import authcache
from tracker.errors import DomainError
from tracker.models import (
    AuditLog,
    Category,
    ClientPrefix,
    Invite,
    Member,
    SitePage,
    StatsFlush,
    Torrent,
    TorrentFile,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services import members as member_services
from tracker.services.audit import audit_record

# API tokens are credentials: DRF's token admin would list every key in clear. Members reset
# their own token; staff never need to read one.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)

admin.site.site_header = f"{settings.PBTS_SITE_NAME} moderation"
admin.site.site_title = f"{settings.PBTS_SITE_NAME} admin"
admin.site.index_title = "Moderation"

# How many per-row failures an action reports one by one before summarising the rest.
MAX_ERROR_MESSAGES = 10


# --- shared pieces ------------------------------------------------------------------------


def _is_moderator(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and user.is_moderator)


class ModeratorAccessMixin:
    """Staff moderate: every staff member may view, add, change and delete, unless a subclass
    narrows it. A ``DomainError`` raised by a service while saving becomes an error message
    (the whole save is rolled back) instead of a server error."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Staff see the app in the admin index."""
        return _is_moderator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may view."""
        return _is_moderator(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Staff may add (inlines pass the parent object as a second argument)."""
        return _is_moderator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may change."""
        return _is_moderator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may delete."""
        return _is_moderator(request)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The add/change view; a refused service call is reported, never a 500."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyAdminMixin(ModeratorAccessMixin):
    """Staff may look; nobody (superusers included) may add, change or delete."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Nobody adds."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody changes."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody deletes."""
        return False


def _json_value(value: Any) -> Any:
    """A field value as stored in the audit log's JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        return [_json_value(v) for v in value]
    return str(value)


def _field_values(obj: models.Model, names: Iterable[str]) -> dict[str, Any]:
    """``{name: value}`` of concrete fields; foreign keys give the related id."""
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        if field.concrete and not field.many_to_many:
            values[name] = _json_value(getattr(obj, field.attname))
    return values


def _concrete_changed(obj: models.Model, changed: Iterable[str]) -> list[str]:
    names = []
    for name in changed:
        try:
            field = obj._meta.get_field(name)
        except FieldDoesNotExist:  # a form-only field
            continue
        if field.concrete and not field.many_to_many:
            names.append(name)
    return names


class AuditedAdminMixin(ModeratorAccessMixin):
    """Audit every add, change and delete made through this admin, with old and new values.

    Actions are named ``<audit_name>_create``, ``<audit_name>_change``, ``<audit_name>_delete``.
    """

    audit_name = ""

    def _after_write(self) -> None:
        """Hook for subclasses: called after each audited write (cache invalidation)."""

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool):
        """Save and append an audit row; unchanged saves write no row."""
        with transaction.atomic():
            if change:
                names = _concrete_changed(obj, form.changed_data)
                old_obj = type(obj)._default_manager.get(pk=obj.pk)
                old = _field_values(old_obj, names)
                super().save_model(request, obj, form, change)  # type: ignore[misc]
                new = _field_values(obj, names)
                if old != new:
                    audit_record(
                        actor=request.user,
                        action=f"{self.audit_name}_change",
                        target=obj,
                        old=old,
                        new=new,
                    )
            else:
                super().save_model(request, obj, form, change)  # type: ignore[misc]
                names = _concrete_changed(obj, form.fields)
                audit_record(
                    actor=request.user,
                    action=f"{self.audit_name}_create",
                    target=obj,
                    new=_field_values(obj, names),
                )
        self._after_write()

    def _audit_delete(self, request: HttpRequest, obj: models.Model) -> None:
        names = [f.name for f in obj._meta.concrete_fields if not f.primary_key]
        audit_record(
            actor=request.user,
            action=f"{self.audit_name}_delete",
            target=obj,
            old=_field_values(obj, names),
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """Audit, then delete."""
        with transaction.atomic():
            self._audit_delete(request, obj)
            super().delete_model(request, obj)  # type: ignore[misc]
        self._after_write()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Audit each row, then delete them (the bulk "delete selected" action)."""
        with transaction.atomic():
            for obj in queryset:
                self._audit_delete(request, obj)
            super().delete_queryset(request, queryset)  # type: ignore[misc]
        self._after_write()


class ReasonForm(forms.Form):
    """The reason a moderation action needs (bans, rejections, deletions)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        max_length=2000,
        help_text="Recorded in the audit log; members may be shown it.",
    )


def _run_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: Iterable[Any],
    func: Callable[[Any], object],
    *,
    success: str,
) -> None:
    """Call ``func`` on every selected object, then report: one success message with the count
    (``success`` formatted with ``count``), one error message per refused object."""
    done = 0
    errors: list[str] = []
    for obj in queryset:
        if not modeladmin.has_change_permission(request, obj):
            errors.append(f"{obj}: you may not change this {obj._meta.verbose_name}.")
            continue
        try:
            func(obj)
        except DomainError as exc:
            errors.append(f"{obj}: {exc.message}")
        else:
            done += 1
    if done:
        modeladmin.message_user(request, success.format(count=done), messages.SUCCESS)
    for error in errors[:MAX_ERROR_MESSAGES]:
        modeladmin.message_user(request, error, messages.ERROR)
    if len(errors) > MAX_ERROR_MESSAGES:
        more = len(errors) - MAX_ERROR_MESSAGES
        modeladmin.message_user(request, f"... and {more} more refused.", messages.ERROR)


def _with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    func: Callable[[Any, str], object],
    success: str,
) -> TemplateResponse | None:
    """An action that needs a reason: first show a page asking for it, then (once a non-empty
    reason is posted back) call ``func(obj, reason)`` on every selected object."""
    if "apply" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            _run_each(modeladmin, request, queryset, lambda obj: func(obj, reason), success=success)
            return None
    else:
        form = ReasonForm()
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "queryset": queryset,
        "form": form,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/tracker/action_reason.html", context)


# --- members ------------------------------------------------------------------------------


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
            )
        )

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
        """Staff change members; only a superuser changes a superuser."""
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

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
            name
            for name in _concrete_changed(obj, form.changed_data)
            if name not in STANDING_FIELDS
        ]
        if others:
            obj.save(update_fields=[*others, "updated_at"])
            audit_record(
                actor=request.user,
                action="member_change",
                target=obj,
                old=_field_values(current, others),
                new=_field_values(obj, others),
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
        return _with_reason(
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
        _run_each(
            self,
            request,
            queryset,
            lambda m: member_services.member_unban(member=m, actor=request.user),
            success="Unbanned {count} member(s).",
        )

    @admin.action(description="Reset passkeys of selected members")
    def reset_passkeys(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        """New passkeys; the old ones stop working at once."""
        _run_each(
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
        _run_each(
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
        _run_each(
            self,
            request,
            queryset,
            lambda m: member_services.member_set_downloading(
                member=m, actor=request.user, enabled=False
            ),
            success="Disabled downloading for {count} member(s).",
        )


# --- invites ------------------------------------------------------------------------------


@admin.register(Invite)
class InviteAdmin(ModeratorAccessMixin, admin.ModelAdmin):
    """Invites: only a code prefix is listed; staff create invites (``invite_create``, which
    sets the expiry) and revoke them. Invites are never edited or deleted."""

    list_display = (
        "code_prefix",
        "inviter",
        "email",
        "created_at",
        "expires_at",
        "used_by",
        "is_revoked",
    )
    list_filter = ("is_revoked", ("used_at", admin.EmptyFieldListFilter), "expires_at")
    search_fields = ("email", "inviter__username", "used_by__username", "=code")
    list_select_related = ("inviter", "used_by")
    raw_id_fields = ("inviter", "used_by")
    show_full_result_count = False
    actions = ("revoke_invites",)
    change_readonly = (
        "id",
        "code_prefix",
        "inviter",
        "email",
        "created_at",
        "expires_at",
        "used_by",
        "used_at",
        "is_revoked",
    )

    @admin.display(description="code")
    def code_prefix(self, obj: Invite) -> str:
        """The first characters of the code, enough to recognise it."""
        return f"{obj.code[:6]}…" if obj.code else "-"

    def get_fields(self, request: HttpRequest, obj: Invite | None = None) -> tuple:
        """Adding asks only for the invitee's email; the staff member is the inviter."""
        return ("email",) if obj is None else self.change_readonly

    def get_readonly_fields(self, request: HttpRequest, obj: Invite | None = None) -> tuple:
        """Nothing of a stored invite is editable."""
        return () if obj is None else self.change_readonly

    def has_delete_permission(self, request: HttpRequest, obj: Invite | None = None) -> bool:
        """Invites are revoked, not deleted."""
        return False

    def save_model(self, request: HttpRequest, obj: Invite, form: forms.ModelForm, change: bool):
        """Create through ``invite_create`` and show the full code once."""
        if change:  # every field is read-only; nothing to save
            return
        invite = member_services.invite_create(
            inviter=request.user, email=form.cleaned_data.get("email", "")
        )
        audit_record(
            actor=request.user,
            action="invite_create",
            target=invite,
            new={"email": invite.email, "expires_at": invite.expires_at.isoformat()},
        )
        obj.pk = invite.pk
        obj.refresh_from_db()
        obj._state.adding = False
        messages.info(
            request,
            f"Invite code (shown only now, send it to the invitee): {invite.code}",
        )

    @admin.action(description="Revoke selected invites")
    def revoke_invites(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        """Revoke unused invites; used ones are reported."""

        def revoke(invite: Invite) -> None:
            with transaction.atomic():
                member_services.invite_revoke(invite=invite, actor=request.user)
                audit_record(
                    actor=request.user,
                    action="invite_revoke",
                    target=invite,
                    old={"is_revoked": False},
                    new={"is_revoked": True},
                )

        _run_each(
            self,
            request,
            queryset.filter(is_revoked=False),
            revoke,
            success="Revoked {count} invite(s).",
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


# --- torrents -----------------------------------------------------------------------------


def _torrent_services() -> Any:
    # Imported when used: the torrent services change often; the admin must load regardless.
    from tracker.services import torrents

    return torrents


class TorrentFileInline(admin.TabularInline):
    """A torrent's files, read-only."""

    model = TorrentFile
    fields = ("path", "size")
    readonly_fields = ("path", "size")
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Files come from the metainfo; never added by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Files are read-only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Files are read-only."""
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff see the files."""
        return _is_moderator(request)


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
        "file_count",
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
        "file_count",
        "is_hybrid",
        "seeders",
        "leechers",
        "snatches",
        "created_at",
        "updated_at",
    )
    inlines = (TorrentFileInline,)
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

    def save_model(self, request: HttpRequest, obj: Torrent, form: forms.ModelForm, change: bool):
        """Save the edited name, description and category through ``torrent_update``."""
        changes = {
            name: form.cleaned_data[name]
            for name in ("name", "description", "category")
            if name in form.changed_data
        }
        if changes:
            _torrent_services().torrent_update(torrent=obj, actor=request.user, **changes)

    def _moderate(self, request: HttpRequest, queryset: QuerySet, status: str, success: str):
        services = _torrent_services()
        _run_each(
            self,
            request,
            queryset,
            lambda t: services.torrent_moderate(torrent=t, actor=request.user, status=status),
            success=success,
        )

    def _moderate_with_reason(
        self, request: HttpRequest, queryset: QuerySet, *, action: str, status: str, title: str
    ):
        services = _torrent_services()
        return _with_reason(
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
        services = _torrent_services()

        def apply(torrent: Torrent) -> None:
            values = {
                "is_freeleech": torrent.is_freeleech,
                "is_double_upload": torrent.is_double_upload,
                **flags,
            }
            services.torrent_set_promotion(torrent=torrent, actor=request.user, **values)

        _run_each(self, request, queryset, apply, success=success)

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


# --- audit log ----------------------------------------------------------------------------


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit log: append-only. Nobody may add, change or delete rows here."""

    list_display = ("created_at", "actor", "action", "target_type", "target_id", "target_repr")
    list_filter = ("action", "target_type", ("actor", admin.RelatedOnlyFieldListFilter))
    search_fields = ("target_repr", "=target_id")
    list_select_related = ("actor",)
    show_full_result_count = False
    fields = (
        "id",
        "created_at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "old_values",
        "new_values",
        "reason",
    )
    readonly_fields = fields
