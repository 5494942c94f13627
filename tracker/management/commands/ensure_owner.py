"""``manage.py ensure_owner``: make sure the owner account (a superuser) exists; idempotent.

Reads ``PBTS_OWNER_USERNAME``, ``PBTS_OWNER_EMAIL`` and ``PBTS_OWNER_PASSWORD``. Without a
configured password one is generated and printed once, when the account is created; a
configured password is never printed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tracker.models import Member
from tracker.services.members import owner_ensure


class Command(BaseCommand):
    """Create the owner superuser if missing; print a generated password once."""

    help = "Create the owner account (superuser) from PBTS_OWNER_* settings if it is missing."

    def handle(self, *args: Any, **options: Any) -> None:
        """Call ``owner_ensure`` and report what happened."""
        username = settings.PBTS_OWNER_USERNAME
        existed = Member.objects.filter(username=username).exists()
        owner, generated = owner_ensure(
            username=username,
            email=settings.PBTS_OWNER_EMAIL,
            password=settings.PBTS_OWNER_PASSWORD,
        )
        if generated:
            self.stdout.write(f"Owner account '{owner.username}' created; password: {generated}")
        elif existed:
            self.stdout.write(f"Owner account '{owner.username}' exists.")
            if not owner.is_superuser:
                self.stderr.write(
                    f"Warning: '{owner.username}' is not a superuser; check PBTS_OWNER_USERNAME."
                )
        else:
            self.stdout.write(
                f"Owner account '{owner.username}' created with the configured password "
                "(PBTS_OWNER_PASSWORD)."
            )
