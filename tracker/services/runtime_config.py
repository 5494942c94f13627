"""The one writer of the run-time configuration (``POST /config``, docs/config.md)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.audit import audit_record
from core.errors import NotPermitted
from tracker.models import Member, RuntimeConfig
from tracker.runtime_config import RuntimeValues, publish_version, values_of

CHANGEABLE = ("min_ratio", "max_peers", "ratio_grace_bytes", "sitewide_freeleech")


def runtime_config_update(*, actor: Member, changes: dict[str, Any]) -> RuntimeValues:
    """Change run-time values and return those in force afterwards.

    Args:
        actor: the moderator acting (active, staff, not banned).
        changes: some of ``min_ratio`` (float, 0..10), ``max_peers`` (int, 1..200),
            ``ratio_grace_bytes`` (int bytes, >= 0), ``sitewide_freeleech`` (bool), already
            validated (the API's serializer; the database's CHECK constraints refuse any
            value out of range all the same).

    The row is locked, changed, its ``version`` raised by one and the change audited
    (``runtime_config_update`` with the old and new values in force); the new version is
    published in the shared cache (at once and again after the commit), and every tracker
    process applies it within ``PBTS_CONFIG_SECONDS`` (``tracker.announce_runtime``).
    Nothing changed: no new version, no audit row.

    Raises:
        NotPermitted: ``actor`` is not an active moderator in good standing.
        ValueError: a key of ``changes`` is not one of :data:`CHANGEABLE`.
    """
    if not (actor.is_active and actor.is_moderator) or actor.is_banned:
        raise NotPermitted("Staff only.")
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"not changeable at run time: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        RuntimeConfig.objects.get_or_create(pk=1)
        row = RuntimeConfig.objects.select_for_update().get(pk=1)
        before = values_of(row)
        for name, value in changes.items():
            setattr(row, name, value)
        after = values_of(row)
        if after.as_dict() == before.as_dict():
            return before
        row.version += 1
        row.save()
        after = values_of(row)
        old, new = before.as_dict(), after.as_dict()
        audit_record(
            actor=actor,
            action="runtime_config_update",
            target=row,
            old={name: old[name] for name in changes if old[name] != new[name]},
            new={name: new[name] for name in changes if old[name] != new[name]},
        )
        # Published at once (a reader that sees it before the commit reads the old row and
        # reads again at its next check) and again after the commit.
        publish_version(row.version, replace=True)
        version = row.version
        transaction.on_commit(lambda: publish_version(version, replace=True))
    return after
