"""The per-member ledger: announced figures (from the tracker) and verified ones (receipts)."""

from django.conf import settings
from django.db import models


class Ledger(models.Model):
    """One row per member. Byte counters are bytes; ``seeding_seconds`` is seconds.

    ``uploaded``/``downloaded`` are what announces reported (deltas credited by the statistics
    flush); ``verified_*`` are backed by BLS receipts (``receipts.services.verify``).
    ``chain_dirty_at`` is set to the time the verified figures last changed and means "push this
    member to the chain"; the chain task clears it after a push, only if it still holds the
    value it read (so a change made during the push is pushed next time).
    """

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="ledger"
    )
    uploaded = models.BigIntegerField(default=0)
    downloaded = models.BigIntegerField(default=0)
    seeding_seconds = models.BigIntegerField(default=0)
    verified_uploaded = models.BigIntegerField(default=0)
    verified_downloaded = models.BigIntegerField(default=0)
    chain_dirty_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The chain task: members whose verified figures changed since the last push.
            models.Index(
                fields=["chain_dirty_at"],
                condition=models.Q(chain_dirty_at__isnull=False),
                name="ledger_chain_dirty",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uploaded__gte=0, downloaded__gte=0), name="ledger_nonnegative"
            ),
            models.CheckConstraint(
                condition=models.Q(verified_uploaded__gte=0, verified_downloaded__gte=0),
                name="ledger_verified_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"ledger of {self.member_id}"
