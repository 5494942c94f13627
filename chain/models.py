"""Chain models: where the contracts are, the members' on-chain records, and one row per
transaction the site sends (push batches and migrations), written *before* the transaction is
broadcast so a crash never loses or repeats one (docs/chain.md).

Amounts are bytes; gas is gas units; addresses are 0x-prefixed checksummed hex (42 chars);
hashes and record ids are raw bytes (32).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact

ADDRESS_LENGTH = 42
HASH_BYTES = 32
PUBLIC_KEY_BYTES = 48
SIGNATURE_BYTES = 96


class ChainStatus(models.TextChoices):
    """The site's last word about the chain, shown in admin and ``/contract/status``."""

    OK = "ok", "OK"
    NOT_CONFIGURED = "not_configured", "Not configured"
    RPC_DOWN = "rpc_down", "RPC endpoint unreachable"
    WRONG_CHAIN = "wrong_chain", "Wrong chain id"
    NO_FUNDS = "no_funds", "Account out of funds"
    NOT_OWNER = "not_owner", "Account does not own the contract"
    REVERTED = "reverted", "Last transaction reverted"
    PENDING = "pending", "Waiting for a receipt"
    ERROR = "error", "Error"


class ChainConfig(models.Model):
    """The single row (pk 1) describing this site's contracts, plus the sender lease.

    ``lease_owner``/``lease_until`` are the lock every sender takes (a conditional UPDATE)
    before it reconciles, picks a nonce, signs and sends: one sender at a time, so two workers
    never race for a nonce. A crashed holder's lease expires at ``lease_until``.
    """

    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    factory_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    reputation_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    referrer_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    owner_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    status = models.CharField(
        max_length=20, choices=ChainStatus.choices, default=ChainStatus.NOT_CONFIGURED
    )
    status_detail = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "chain configuration"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="chainconfig_singleton"),
        ]

    def __str__(self) -> str:
        return f"chain {self.chain_id or '?'}: {self.reputation_address or 'no contract'}"


class ChainMember(models.Model):
    """A member's record on this site's contract.

    ``record_id`` = keccak256(``public_key``), fixed at the first push or migration even if the
    member later rotates their BLS key. ``pushed_*`` is what the contract holds as of the last
    confirmed transaction; a member waits for a push while the ledger's imported + verified
    figures differ from them (``chain.selectors.ledgers_waiting_for_push``). ``imported_from``
    and ``imported_at`` say where and when a migration brought figures from a predecessor (the
    figures themselves are the ledger's). ``is_blocked`` stops pushes (a deterministic revert
    such as CounterDecreased, or ``failures`` consecutive failed batches) until staff unblock.
    """

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="chain_record",
    )
    record_id = models.BinaryField(max_length=HASH_BYTES)
    public_key = models.BinaryField(max_length=PUBLIC_KEY_BYTES)
    pushed_uploaded = models.BigIntegerField(default=0)
    pushed_downloaded = models.BigIntegerField(default=0)
    pushed_at = models.DateTimeField(null=True, blank=True)
    imported_from = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    imported_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    is_blocked = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "on-chain member"
        constraints = [
            models.UniqueConstraint(fields=["record_id"], name="chainmember_record_id_unique"),
            models.CheckConstraint(
                condition=Exact(Length("record_id"), HASH_BYTES),
                name="chainmember_record_id_32_bytes",
            ),
            models.CheckConstraint(
                condition=Q(pushed_uploaded__gte=0, pushed_downloaded__gte=0),
                name="chainmember_nonnegative",
            ),
        ]

    def __str__(self) -> str:
        return f"0x{bytes(self.record_id).hex()[:16]}… ({self.member_id})"


class TxStatus(models.TextChoices):
    """A sent transaction's life: ``pending`` (signed and recorded, not yet accepted by a
    node), ``sent`` (accepted), then ``confirmed`` (mined, status 1) or ``failed`` (mined with
    status 0, or refused / replaced: never counted as success)."""

    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"


OPEN_TX = (TxStatus.PENDING, TxStatus.SENT)


class SentTransaction(models.Model):
    """Fields of every transaction the site signs: written before it is broadcast.

    ``raw_tx`` is the signed transaction (public once broadcast; re-sent as is after a crash,
    so a retry can never be a second transaction); ``gas_limit``/``gas_used`` gas;
    ``max_fee`` wei per gas.
    """

    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    contract_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    tx_hash = models.BinaryField(max_length=HASH_BYTES, null=True, blank=True)
    raw_tx = models.BinaryField(null=True, blank=True)
    tx_status = models.CharField(max_length=12, choices=TxStatus.choices, blank=True)
    gas_limit = models.PositiveBigIntegerField(null=True, blank=True)
    max_fee = models.DecimalField(max_digits=40, decimal_places=0, null=True, blank=True)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    broadcasts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def tx_hash_hex(self) -> str:
        """``0x``-prefixed hash, or "" before signing."""
        return f"0x{bytes(self.tx_hash).hex()}" if self.tx_hash else ""


class PushBatch(SentTransaction):
    """One ``updateUsers`` transaction: up to 100 members' absolute totals (bytes)."""

    size = models.PositiveSmallIntegerField(default=0)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="PushItem", related_name="chain_push_batches"
    )

    class Meta:
        verbose_name = "push batch"
        verbose_name_plural = "push batches"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tx_hash"], name="pushbatch_tx_hash_unique"),
            models.CheckConstraint(condition=Q(size__lte=100), name="pushbatch_at_most_100"),
            models.CheckConstraint(
                condition=Q(tx_status__in=[s.value for s in TxStatus]),
                name="pushbatch_tx_status_valid",
            ),
        ]
        indexes = [
            # Reconciliation: the open transactions, oldest nonce first.
            models.Index(
                fields=["nonce"], condition=Q(tx_status__in=OPEN_TX), name="pushbatch_open"
            ),
        ]

    def __str__(self) -> str:
        return f"push {self.pk} ({self.size} members, {self.tx_status})"


class PushItem(models.Model):
    """One member of a batch: the totals sent (bytes), which become the member's ``pushed_*``
    once the batch is confirmed."""

    batch = models.ForeignKey(PushBatch, on_delete=models.CASCADE, related_name="items")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chain_push_items"
    )
    record_id = models.BinaryField(max_length=HASH_BYTES)
    uploaded = models.BigIntegerField()
    downloaded = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "member"], name="pushitem_once_per_batch"),
        ]
        indexes = [
            # Members in open batches are left out of new ones; a member's push history.
            models.Index(fields=["member", "batch"], name="pushitem_member"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} in push {self.batch_id}"


class MigrationStatus(models.TextChoices):
    """``challenged`` (challenge issued, waiting for the member's signature), ``queued``
    (signature checked, transaction not yet signed), then the transaction states."""

    CHALLENGED = "challenged", "Challenged"
    QUEUED = "queued", "Queued"
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class Migration(SentTransaction):
    """A member's request to import their record from the predecessor contracts.

    The member signs ``message`` (built from the chain id, this contract, the record id and
    the random ``challenge``) with the BLS key whose keccak256 is ``record_id``; the site checks
    it, then calls ``migrateUserData``. ``imported_*`` (bytes) and ``source_address`` come from
    the ``UserMigrated`` event.
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chain_migrations"
    )
    public_key = models.BinaryField(max_length=PUBLIC_KEY_BYTES)
    record_id = models.BinaryField(max_length=HASH_BYTES)
    challenge = models.BinaryField(max_length=HASH_BYTES)
    signature = models.BinaryField(max_length=SIGNATURE_BYTES, null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=MigrationStatus.choices, default=MigrationStatus.CHALLENGED
    )
    expires_at = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    source_address = models.CharField(max_length=ADDRESS_LENGTH, blank=True)
    imported_uploaded = models.BigIntegerField(null=True, blank=True)
    imported_downloaded = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tx_hash"], name="migration_tx_hash_unique"),
            models.UniqueConstraint(fields=["challenge"], name="migration_challenge_unique"),
            # One live request per member at a time; one confirmed migration ever.
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status__in=["queued", "pending", "sent"]),
                name="migration_one_in_flight_per_member",
            ),
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status="confirmed"),
                name="migration_once_per_member",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="migration_member_created"),
            # Reconciliation and the send queue.
            models.Index(
                fields=["status"],
                condition=Q(status__in=["queued", "pending", "sent"]),
                name="migration_open",
            ),
        ]

    def __str__(self) -> str:
        return f"migration {self.pk} of {self.member_id} ({self.status})"
