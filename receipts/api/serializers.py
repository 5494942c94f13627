"""Receipts API serializers: input validation and the JSON shapes of keys, reports, receipts.

Binary values travel as standard base64 (RFC 4648 section 4, with padding), except ids and
hashes, which are lower-case hex. Write serializers only validate the request's shape; the
services apply the rules. Inside a report, a receipt's bad base64 or wrong length is that
receipt's refusal reason, not an error of the whole request.
"""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from receipts import rules
from receipts.models import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, BLSKey, Receipt

B64_MAX = 4096
"""Longest base64 text accepted for one value (characters); far above any real receipt."""


@extend_schema_field(OpenApiTypes.BYTE)
class Base64BytesField(serializers.Field):
    """Standard base64 text <-> ``bytes`` of an exact length (``length`` bytes)."""

    default_error_messages = {
        "invalid": "Not valid base64 (RFC 4648, standard alphabet, with padding).",
        "length": "Must be {expected} bytes once decoded; got {got}.",
    }

    def __init__(self, *, length: int, **kwargs: Any) -> None:
        self.length = length
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> bytes:
        """Decode; refuse anything but a string of base64 of exactly ``length`` bytes."""
        if not isinstance(data, str) or len(data) > B64_MAX:
            self.fail("invalid")
        try:
            raw = rules.decode_b64(data, field=self.field_name or "value")
        except ValueError:
            self.fail("invalid")
        if len(raw) != self.length:
            self.fail("length", expected=self.length, got=len(raw))
        return raw

    def to_representation(self, value: bytes) -> str:
        """Encode as standard base64."""
        return base64.b64encode(bytes(value)).decode("ascii")


def b64_text(**kwargs: Any) -> serializers.CharField:
    """A base64 text kept as received (its decoding is the service's per-receipt check)."""
    return serializers.CharField(
        max_length=B64_MAX, allow_blank=True, trim_whitespace=False, **kwargs
    )


USER_ID_HELP = (
    "Optional, for clients of the old API: your username or numeric id. The API token alone "
    "identifies you; a different value is refused."
)


# --- keys ------------------------------------------------------------------------------------


class KeyRegisterSerializer(serializers.Serializer):
    """Input of a key registration: the public key and its proof of possession."""

    public_key = Base64BytesField(
        length=PUBLIC_KEY_BYTES, help_text="48-byte compressed G1 public key, base64."
    )
    pop = Base64BytesField(
        length=SIGNATURE_BYTES,
        help_text="96-byte proof of possession (PopProve of the POP ciphersuite), base64.",
    )
    user_id = serializers.CharField(required=False, max_length=150, help_text=USER_ID_HELP)


class BLSKeySerializer(serializers.ModelSerializer):
    """A registered key (public data only)."""

    public_key = Base64BytesField(length=PUBLIC_KEY_BYTES, read_only=True)
    fingerprint = serializers.CharField(read_only=True, help_text="sha256(public_key), 16 hex.")
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = BLSKey
        fields = ["fingerprint", "public_key", "is_active", "created_at", "revoked_at"]
        read_only_fields = fields


class KeyRegisteredSerializer(BLSKeySerializer):
    """Response of a registration: the active key and the fingerprint of the key it
    replaced (``null`` for a first key or a repeated registration)."""

    replaced = serializers.CharField(read_only=True, allow_null=True)

    class Meta(BLSKeySerializer.Meta):
        fields = [*BLSKeySerializer.Meta.fields, "replaced"]
        read_only_fields = fields


# --- reports ---------------------------------------------------------------------------------


class SingleReceiptInputSerializer(serializers.Serializer):
    """A singly-signed receipt: its bytes and the downloader's signature, both base64."""

    receipt = b64_text(help_text="The receipt bytes (receipts.format), base64.")
    signature = b64_text(help_text="96-byte signature by the downloader, base64.")


class AggregateInputSerializer(serializers.Serializer):
    """Receipts (distinct) under one aggregate signature of their downloaders."""

    receipts = serializers.ListField(
        child=b64_text(), min_length=1, help_text="Receipt bytes, base64, each once."
    )
    signature = b64_text(help_text="96-byte aggregate signature, base64.")


class ReportSubmitSerializer(serializers.Serializer):
    """Input of a report: singly-signed receipts and/or aggregates, at most
    ``PBTS_REPORT_MAX_RECEIPTS`` receipts in all.

    The client's one-aggregate form, ``{"receipts": [{"receipt": b64}, ...],
    "aggregate_signature": b64}`` (what ``python -m receipts.client aggregate`` makes), is
    accepted too and read as ``{"aggregates": [{"receipts": [b64, ...], "signature": b64}]}``.
    """

    receipts = SingleReceiptInputSerializer(many=True, required=False, default=list)
    aggregates = AggregateInputSerializer(many=True, required=False, default=list)
    aggregate_signature = b64_text(
        required=False,
        help_text="One aggregate signature over all of `receipts`, which then carry no "
        "signature of their own (the client's form).",
    )
    user_id = serializers.CharField(required=False, max_length=150, help_text=USER_ID_HELP)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """Read the client's one-aggregate form; refuse an oversize report before validating
        its entries one by one."""
        if isinstance(data, dict) and "aggregate_signature" in data:
            data = _one_aggregate(data)
        if isinstance(data, dict):
            count = _raw_count(data)
            limit = settings.PBTS_REPORT_MAX_RECEIPTS
            if count > limit:
                raise serializers.ValidationError(
                    {
                        "receipts": [
                            f"A report holds at most {limit} receipts (singly-signed and "
                            f"aggregated together); this one has {count}. Split it into "
                            "several reports."
                        ]
                    }
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """At least one receipt."""
        if not attrs["receipts"] and not attrs["aggregates"]:
            raise serializers.ValidationError({"receipts": ["The report holds no receipts."]})
        return attrs


def _one_aggregate(data: dict[str, Any]) -> dict[str, Any]:
    """``{"receipts": [{"receipt": b64} | b64, ...], "aggregate_signature": b64}`` ->
    ``{"aggregates": [{"receipts": [b64, ...], "signature": b64}]}``.

    Raises:
        ValidationError: ``aggregates`` is given too, or an entry carries its own signature.
    """
    if "aggregates" in data:
        raise serializers.ValidationError(
            {"aggregate_signature": ["Send either aggregate_signature or aggregates, not both."]}
        )
    entries = data.get("receipts")
    texts: Any = entries
    if isinstance(entries, list):
        texts = []
        for entry in entries:
            if isinstance(entry, dict) and "signature" in entry:
                raise serializers.ValidationError(
                    {
                        "receipts": [
                            "With aggregate_signature, receipts carry no signature of their own."
                        ]
                    }
                )
            texts.append(entry.get("receipt") if isinstance(entry, dict) else entry)
    rest = {k: v for k, v in data.items() if k not in ("receipts", "aggregate_signature")}
    return {**rest, "aggregates": [{"receipts": texts, "signature": data["aggregate_signature"]}]}


def _raw_count(data: dict[str, Any]) -> int:
    """Receipts in a raw report body (entries that are not lists count as none)."""
    singles = data.get("receipts")
    count = len(singles) if isinstance(singles, list) else 0
    groups = data.get("aggregates")
    if isinstance(groups, list):
        for group in groups:
            inner = group.get("receipts") if isinstance(group, dict) else None
            count += len(inner) if isinstance(inner, list) else 0
    return count


class ReceiptStatusSerializer(serializers.ModelSerializer):
    """One receipt of a report and where it stands."""

    receipt_id = serializers.SerializerMethodField(
        help_text="sha256 of the receipt bytes, hex; null when they did not decode."
    )
    # Plain text, not an enum: "status" enums of other components keep their schema names.
    status = serializers.CharField(read_only=True, help_text="queued, verified or refused")

    class Meta:
        model = Receipt
        fields = [
            "position",
            "receipt_id",
            "status",
            "reason",
            "piece_index",
            "piece_length",
            "time_bucket",
            "verified_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_receipt_id(self, receipt: Receipt) -> str | None:
        """Hex of the 32-byte id."""
        return bytes(receipt.receipt_id).hex() if receipt.receipt_id else None


class AggregateStatusSerializer(serializers.Serializer):
    """An aggregate signature of a report, its status and its receipts'."""

    position = serializers.IntegerField(source="aggregate.position")
    status = serializers.CharField(
        source="aggregate.status", help_text="queued, verified or refused"
    )
    reason = serializers.CharField(source="aggregate.reason")
    size = serializers.IntegerField(source="aggregate.size")
    receipts = ReceiptStatusSerializer(many=True)


class ReportSerializer(serializers.Serializer):
    """A report: counters, then each receipt's status (``queued``, ``verified`` or
    ``refused`` with a reason). ``credited_bytes`` is the upload credited so far."""

    id = serializers.IntegerField(source="report.pk")
    status = serializers.CharField(source="report.status", help_text="pending or done")
    created_at = serializers.DateTimeField(source="report.created_at")
    received = serializers.IntegerField(source="report.received")
    queued = serializers.IntegerField(source="report.queued")
    verified = serializers.IntegerField(source="report.verified")
    refused = serializers.IntegerField(source="report.refused")
    credited_bytes = serializers.IntegerField(source="report.credited_bytes")
    receipts = ReceiptStatusSerializer(source="singles", many=True)
    aggregates = AggregateStatusSerializer(many=True)


class ReportSummarySerializer(serializers.Serializer):
    """A report in a list (counters only)."""

    id = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    received = serializers.IntegerField()
    queued = serializers.IntegerField()
    verified = serializers.IntegerField()
    refused = serializers.IntegerField()
    credited_bytes = serializers.IntegerField()


# --- attest and keygen -----------------------------------------------------------------------


class AttestSerializer(serializers.Serializer):
    """Fields of a receipt; the answer is its canonical bytes for the client to sign."""

    info_hash = serializers.RegexField(
        r"^[0-9a-fA-F]{40}$", help_text="The torrent's v1 info_hash, 40 hex digits."
    )
    piece_index = serializers.IntegerField(min_value=0, max_value=2**32 - 1)
    piece_length = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**32 - 1,
        help_text="Bytes in that piece; the right value is filled in when left out.",
    )
    uploader_pk = Base64BytesField(length=PUBLIC_KEY_BYTES, help_text="Uploader key, base64.")
    downloader_pk = Base64BytesField(
        length=PUBLIC_KEY_BYTES, help_text="Downloader key (the signer), base64."
    )
    time = serializers.IntegerField(
        required=False, min_value=0, help_text="Unix seconds; now when left out."
    )


class AttestedSerializer(serializers.Serializer):
    """The canonical receipt bytes (base64) and their id (hex), with the values used."""

    receipt = serializers.CharField(help_text="Receipt bytes to sign, base64.")
    receipt_id = serializers.CharField(help_text="sha256 of the receipt bytes, hex.")
    realm_id = serializers.CharField(help_text="This site's realm id, hex.")
    piece_length = serializers.IntegerField()
    time_bucket = serializers.IntegerField()


class ReceiptConfigSerializer(serializers.Serializer):
    """What a client needs to make receipts this site accepts."""

    realm_id = serializers.CharField(help_text="This site's realm id, 64 hex digits.")
    version = serializers.IntegerField(help_text="Receipt format version.")
    receipt_length = serializers.IntegerField(help_text="Bytes in a receipt.")
    time_bucket_seconds = serializers.IntegerField()
    window_seconds = serializers.IntegerField(help_text="Oldest receipt accepted, seconds.")
    future_buckets = serializers.IntegerField(help_text="Buckets a receipt may be ahead.")
    max_receipts_per_report = serializers.IntegerField()


class DevKeyPairSerializer(serializers.Serializer):
    """A demo key pair (``PBTS_DEV_KEYGEN`` only): never use it for real credit."""

    private_key = serializers.CharField(help_text="32-byte secret scalar, hex. Keep it secret.")
    public_key = Base64BytesField(length=PUBLIC_KEY_BYTES)
    pop = Base64BytesField(length=SIGNATURE_BYTES)
    warning = serializers.CharField()
