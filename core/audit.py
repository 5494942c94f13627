"""The append-only audit log of staff actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from core.models import AuditLog

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

SECRET_FIELDS = frozenset({"passkey", "password", "token", "api_token", "key"})
MASK = "********"


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (MASK if k in SECRET_FIELDS else v) for k, v in values.items()}


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: models.Model,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    """Append one audit row; values of secret fields (passkey, password, token) are masked.

    Args:
        actor: the staff member acting (``None`` for the system).
        action: a short verb such as ``member_ban``.
        target: the model instance acted on.
        old, new: JSON-serialisable field values before and after.
    """
    return AuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:255],
        old_values=_masked(old or {}),
        new_values=_masked(new or {}),
        reason=reason,
    )
