"""The per-member ledger: announced figures (from the tracker) and verified ones (receipts)."""

from django.conf import settings
from django.db import models


class Ledger(models.Model):
    """One row per member. Byte counters are bytes; ``seeding_seconds`` is seconds.

    ``uploaded``/``downloaded`` are what announces reported (deltas credited by the statistics
    flush); ``verified_*`` are backed by BLS receipts (receipt verification); ``imported_*``
    came from a predecessor site's contract (a chain migration). Only
    ``reputation.services`` writes these figures.
    """

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="ledger"
    )
    uploaded = models.BigIntegerField(default=0)
    downloaded = models.BigIntegerField(default=0)
    seeding_seconds = models.BigIntegerField(default=0)
    verified_uploaded = models.BigIntegerField(default=0)
    verified_downloaded = models.BigIntegerField(default=0)
    imported_uploaded = models.BigIntegerField(default=0)
    imported_downloaded = models.BigIntegerField(default=0)
    # Announces whose deltas exceeded the rate bound and were cut (a client claiming more than
    # the wire can carry); moderators filter on them.
    clamped_announces = models.PositiveIntegerField(default=0)
    clamped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uploaded__gte=0, downloaded__gte=0), name="ledger_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(verified_uploaded__gte=0, verified_downloaded__gte=0),
                name="ledger_verified_nonnegative",
            ),
            models.CheckConstraint(
                condition=models.Q(imported_uploaded__gte=0, imported_downloaded__gte=0),
                name="ledger_imported_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"ledger of {self.member_id}"
