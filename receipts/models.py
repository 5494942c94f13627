"""Receipt models: members' BLS public keys, reports, aggregate signatures and receipts.

Models stay thin: fields, named constraints and indexes. The rules live in
``receipts/services`` (writes) and ``receipts/rules.py`` (pure checks); the wire format in
``receipts/format.py``.

Sizes follow the ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``: public keys are
48-byte compressed G1 points, signatures (and proofs of possession) 96-byte compressed G2
points. A receipt id is the 32-byte SHA-256 of the receipt's signed bytes.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact

PUBLIC_KEY_BYTES = 48
"""A compressed G1 point (BLS public key)."""

SIGNATURE_BYTES = 96
"""A compressed G2 point (signature or proof of possession)."""

RECEIPT_ID_BYTES = 32
"""SHA-256 of a receipt's signed bytes."""


def key_fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256, in
    groups of four (``ab12:cd34:ef56:7890``). Shown on the profile and in admin."""
    digest = hashlib.sha256(bytes(public_key)).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


class BLSKey(models.Model):
    """A member's BLS public key with its proof of possession (both checked at registration).

    A member has at most one active key (``revoked_at`` is null); registering a new one revokes
    the old one, which stays as history. A public key is registered once, ever, by one member:
    it can never be re-bound to another account (receipts name keys, not members).
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bls_keys"
    )
    public_key = models.BinaryField(max_length=PUBLIC_KEY_BYTES)
    pop = models.BinaryField(max_length=SIGNATURE_BYTES)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "BLS key"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["public_key"], name="blskey_public_key_unique"),
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(revoked_at__isnull=True),
                name="blskey_one_active_per_member",
            ),
            models.CheckConstraint(
                condition=Exact(Length("public_key"), PUBLIC_KEY_BYTES),
                name="blskey_public_key_48_bytes",
            ),
            models.CheckConstraint(
                condition=Exact(Length("pop"), SIGNATURE_BYTES), name="blskey_pop_96_bytes"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint} ({self.member_id})"

    @property
    def fingerprint(self) -> str:
        """See :func:`key_fingerprint`."""
        return key_fingerprint(self.public_key)

    @property
    def is_active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


class Status(models.TextChoices):
    """Where a receipt (or an aggregate signature) stands."""

    QUEUED = "queued", "Queued"
    VERIFIED = "verified", "Verified"
    REFUSED = "refused", "Refused"


class ReportStatus(models.TextChoices):
    """``pending`` while any receipt is queued, then ``done``."""

    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class Report(models.Model):
    """One POST of receipts by an uploader (the reporter).

    Counters: ``received`` entries in the report; each is ``queued``, ``verified`` or
    ``refused``, and the three always add up to ``received``. ``credited_bytes`` is the upload
    credited to the reporter by this report so far (bytes).
    """

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="receipt_reports"
    )
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    received = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    verified = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    credited_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A member's reports, newest first (API list, admin).
            models.Index(fields=["reporter", "-created_at"], name="report_reporter_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    received=models.F("queued") + models.F("verified") + models.F("refused")
                ),
                name="report_counts_add_up",
            ),
            models.CheckConstraint(
                condition=Q(status=ReportStatus.PENDING, queued__gt=0)
                | Q(status=ReportStatus.DONE, queued=0),
                name="report_status_matches_queued",
            ),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} by {self.reporter_id}"


class AggregateSignature(models.Model):
    """One 96-byte aggregate signature covering several receipts of a report (each with a
    distinct message). It is verified as one item, so its receipts share its fate: all
    verified, or all refused."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="aggregates")
    position = models.PositiveIntegerField(help_text="Index in the report's aggregates list.")
    signature = models.BinaryField(max_length=SIGNATURE_BYTES)
    size = models.PositiveIntegerField(help_text="Receipts the signature covers.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["report", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "position"], name="aggregate_report_position"
            ),
        ]
        indexes = [
            # The verify task claims queued aggregates in id order.
            models.Index(fields=["id"], condition=Q(status=Status.QUEUED), name="aggregate_queued"),
        ]

    def __str__(self) -> str:
        return f"aggregate {self.position} of report {self.report_id}"


class Receipt(models.Model):
    """One receipt of a report, as received and as decided.

    ``data`` holds the signed bytes (``receipts.format``) and ``receipt_id`` their SHA-256; both
    are empty/null when the entry did not decode. A singly-signed receipt carries its 96-byte
    ``signature``; a receipt under an aggregate has ``aggregate`` set instead. Decoded fields
    are copied into columns (members, torrent, piece, bytes, time bucket) for queries and
    crediting; ``piece_length`` is in bytes and is the amount credited.

    The receipt id is unique among queued and verified receipts (a partial unique index), so
    a receipt is credited at most once, whichever of two concurrent reports inserts it first;
    so is (downloader, torrent, piece index), so a downloader is credited for a piece once.
    A refused receipt does not hold its id: the same bytes may be reported again later.
    """

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="receipts")
    aggregate = models.ForeignKey(
        AggregateSignature,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="receipts",
    )
    position = models.PositiveIntegerField(
        help_text="Index in the report's receipts list, or in its aggregate's list."
    )
    receipt_id = models.BinaryField(max_length=RECEIPT_ID_BYTES, null=True, blank=True)
    data = models.BinaryField(blank=True, default=b"")
    signature = models.BinaryField(max_length=SIGNATURE_BYTES, null=True, blank=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="receipts_uploaded",
    )
    downloader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="receipts_downloaded",
    )
    torrent = models.ForeignKey(
        "tracker.Torrent",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="receipts",
    )
    piece_index = models.BigIntegerField(null=True, blank=True)
    piece_length = models.BigIntegerField(null=True, blank=True)
    time_bucket = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=255, blank=True)
    is_credited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["report", "aggregate", "position"]
        constraints = [
            # Double-spend guard: one live (queued or verified) row per receipt id.
            models.UniqueConstraint(
                fields=["receipt_id"],
                condition=Q(status__in=[Status.QUEUED, Status.VERIFIED]),
                name="receipt_id_unique_live",
            ),
            # A downloader is credited for a piece of a torrent once, whatever the time bucket
            # and the uploader named (re-signing a piece every minute mints nothing).
            models.UniqueConstraint(
                fields=["downloader", "torrent", "piece_index"],
                condition=Q(status__in=[Status.QUEUED, Status.VERIFIED]),
                name="receipt_piece_once_per_downloader",
            ),
            # Credited exactly when verified.
            models.CheckConstraint(
                condition=Q(status=Status.VERIFIED, is_credited=True)
                | (~Q(status=Status.VERIFIED) & Q(is_credited=False)),
                name="receipt_credited_iff_verified",
            ),
            # A live receipt has everything the verify task needs, and exactly one of a
            # signature or an aggregate.
            models.CheckConstraint(
                condition=Q(status=Status.REFUSED)
                | (
                    Q(
                        receipt_id__isnull=False,
                        uploader__isnull=False,
                        downloader__isnull=False,
                        torrent__isnull=False,
                        piece_length__gt=0,
                    )
                    & (
                        Q(signature__isnull=False, aggregate__isnull=True)
                        | Q(signature__isnull=True, aggregate__isnull=False)
                    )
                ),
                name="receipt_live_is_complete",
            ),
        ]
        indexes = [
            # The rate bound: live bytes per uploader and per downloader in a time bucket.
            models.Index(
                fields=["uploader", "time_bucket"],
                condition=Q(status__in=[Status.QUEUED, Status.VERIFIED]),
                name="receipt_live_uploader_bucket",
            ),
            models.Index(
                fields=["downloader", "time_bucket"],
                condition=Q(status__in=[Status.QUEUED, Status.VERIFIED]),
                name="receipt_live_downloader_bucket",
            ),
            # The verify task claims queued singly-signed receipts in id order.
            models.Index(
                fields=["id"],
                condition=Q(status=Status.QUEUED, aggregate__isnull=True),
                name="receipt_queued_single",
            ),
        ]

    def __str__(self) -> str:
        rid = bytes(self.receipt_id).hex()[:12] if self.receipt_id else "undecoded"
        return f"receipt {rid}… ({self.status})"
