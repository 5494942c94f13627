"""The per-member ledger: announced figures (from the tracker) and verified ones (receipts)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    # Upload bought with bonus points (bytes, ``reputation.services.ledger_credit_bonus``): it
    # counts for the site's ratio rule only, never for verified, imported or on-chain figures.
    bonus_uploaded = models.BigIntegerField(default=0)
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
            models.CheckConstraint(
                condition=models.Q(bonus_uploaded__gte=0), name="ledger_bonus_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"ledger of {self.member_id}"


class BonusAccount(models.Model):
    """A member's bonus point balance in millipoints (1 point = 1000), never negative (the
    CHECK below; ``reputation.services.bonus_spend`` spends with a conditional UPDATE). Only
    ``reputation.services`` writes it; every change has a :class:`BonusTransaction`."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="bonus_account",
    )
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="bonus_balance_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"bonus account of {self.member_id}"


class BonusKind(models.TextChoices):
    """What moved points: seeding (earn), the store (spend) or staff (adjust)."""

    EARN = "earn", "Earned by seeding"
    SPEND = "spend", "Spent in the store"
    ADJUST = "adjust", "Staff adjustment"


class BonusTransaction(models.Model):
    """One movement of bonus points, append-only: ``amount`` in millipoints (positive credits,
    negative debits), ``balance_after`` the account's balance once applied (millipoints),
    ``reference`` what it was for (``seeding``, ``upload:1GiB``, ``freeleech:<torrent id>``,
    a staff reason), ``actor`` the staff member of an adjustment."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bonus_transactions",
        db_index=False,
    )
    amount = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=BonusKind.choices)
    reference = models.CharField(max_length=255, blank=True)
    balance_after = models.BigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A member's recent transactions (the bonus page and API), newest first.
            models.Index(fields=["member", "-created_at", "-id"], name="bonus_tx_member_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} for {self.member_id}"
