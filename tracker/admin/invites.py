"""Admin of invites: staff see the invite tree and revoke unused invites."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import (
    ModeratorAccessMixin,
    run_each,
)
from core.audit import audit_record
from tracker.models import (
    Invite,
)
from tracker.services import members as member_services

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

        run_each(
            self,
            request,
            queryset.filter(is_revoked=False),
            revoke,
            success="Revoked {count} invite(s).",
        )
