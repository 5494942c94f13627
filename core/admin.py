"""Admin helpers every app's admin uses, and the audit log's admin (the site itself, its names
and who may enter it: ``core.admin_site``).

Every staff member in good standing (``Member.is_moderator``, not banned) may moderate, as the
services allow; Django's per-model permissions are not used. Moderation goes through each app's
services (admin actions, and ``save_model`` for fields the services own), so each change is
audited and caches are invalidated; edits the services do not cover are audited by
:class:`AuditedAdminMixin`. The audit log itself is read-only for everyone, superusers included.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from rest_framework.authtoken.admin import TokenProxy

from core.admin_site import is_moderator
from core.audit import audit_record
from core.errors import DomainError
from core.models import AuditLog, Notification

# API tokens are credentials: DRF's token admin would list every key in clear. Members reset
# their own token; staff never need to read one.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)

# How many per-row failures an action reports one by one before summarising the rest.
MAX_ERROR_MESSAGES = 10


# --- shared pieces ------------------------------------------------------------------------


class ModeratorAccessMixin:
    """Staff moderate: every staff member may view, add, change and delete, unless a subclass
    narrows it. A ``DomainError`` raised by a service while saving becomes an error message
    (the whole save is rolled back) instead of a server error."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Staff see the app in the admin index."""
        return is_moderator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may view."""
        return is_moderator(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        """Staff may add (inlines pass the parent object as a second argument)."""
        return is_moderator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may change."""
        return is_moderator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Staff may delete."""
        return is_moderator(request)

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


def json_value(value: Any) -> Any:
    """A field value as stored in the audit log's JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        return [json_value(v) for v in value]
    return str(value)


def field_values(obj: models.Model, names: Iterable[str]) -> dict[str, Any]:
    """``{name: value}`` of concrete fields; foreign keys give the related id."""
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        if field.concrete and not field.many_to_many:
            values[name] = json_value(getattr(obj, field.attname))
    return values


def concrete_changed(obj: models.Model, changed: Iterable[str]) -> list[str]:
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
                names = concrete_changed(obj, form.changed_data)
                old_obj = type(obj)._default_manager.get(pk=obj.pk)
                old = field_values(old_obj, names)
                super().save_model(request, obj, form, change)  # type: ignore[misc]
                new = field_values(obj, names)
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
                names = concrete_changed(obj, form.fields)
                audit_record(
                    actor=request.user,
                    action=f"{self.audit_name}_create",
                    target=obj,
                    new=field_values(obj, names),
                )
        self._after_write()

    def _audit_delete(self, request: HttpRequest, obj: models.Model) -> None:
        names = [f.name for f in obj._meta.concrete_fields if not f.primary_key]
        audit_record(
            actor=request.user,
            action=f"{self.audit_name}_delete",
            target=obj,
            old=field_values(obj, names),
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


def run_each(
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


def with_reason(
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
            run_each(modeladmin, request, queryset, lambda obj: func(obj, reason), success=success)
            return None
    else:
        form = ReasonForm()
    return action_form_page(modeladmin, request, queryset, action=action, title=title, form=form)


def action_form_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    form: Any,
) -> TemplateResponse:
    """The intermediate page of an admin action that asks for ``form``'s fields first (a
    reason, points, ...): it lists the selected objects and posts back to the change list with
    the same ``action`` and selection plus ``apply``."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        "form": form,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/core/action_reason.html", context)


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


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Notifications sent to members, read-only for moderators (``core.notifications``)."""

    list_display = ("created_at", "member", "kind", "subject", "read_at")
    list_filter = ("kind", ("read_at", admin.EmptyFieldListFilter))
    search_fields = ("subject", "member__username")
    list_select_related = ("member",)
    show_full_result_count = False
    fields = ("id", "created_at", "member", "kind", "subject", "body", "url", "read_at")
    readonly_fields = fields
