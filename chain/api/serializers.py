"""Input validation of the chain endpoints (field-level messages on error)."""

from __future__ import annotations

import base64
import binascii

from rest_framework import serializers

from receipts.models import SIGNATURE_BYTES


def decode_blob(text: str, *, size: int | None = None) -> bytes:
    """``0x``-prefixed hex or standard base64 text to bytes; ``size`` when given must match.
    Raises serializers.ValidationError."""
    text = text.strip()
    try:
        if text.startswith("0x"):
            data = bytes.fromhex(text[2:])
        else:
            data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise serializers.ValidationError("Give 0x-prefixed hex or base64.") from None
    if size is not None and len(data) != size:
        raise serializers.ValidationError(f"Expected {size} bytes, got {len(data)}.")
    return data


class InitSerializer(serializers.Serializer):
    """POST /contract/init: deploy the factory if needed, then create this site's contract."""

    referrer = serializers.CharField(required=False, allow_blank=True, max_length=42)
    attestation = serializers.CharField(required=False, allow_blank=True, max_length=20000)

    def validate_attestation(self, value: str) -> bytes:
        return decode_blob(value) if value else b""


class UsernameSerializer(serializers.Serializer):
    """A member named by username."""

    username = serializers.CharField(max_length=150)


class UpdateSerializer(serializers.Serializer):
    """POST /contract/update: one member, or every changed member when absent."""

    username = serializers.CharField(max_length=150, required=False)


class SignatureSerializer(serializers.Serializer):
    """A 96-byte BLS signature, hex (0x) or base64."""

    signature = serializers.CharField(max_length=300)

    def validate_signature(self, value: str) -> bytes:
        return decode_blob(value, size=SIGNATURE_BYTES)


class MigrateSerializer(serializers.Serializer):
    """POST /contract/migrate (staff, for a member): without ``migration_id`` and
    ``signature`` a challenge is issued; with both, the member's signature is submitted."""

    username = serializers.CharField(max_length=150)
    migration_id = serializers.IntegerField(required=False, min_value=1)
    signature = serializers.CharField(max_length=300, required=False)

    def validate_signature(self, value: str) -> bytes:
        return decode_blob(value, size=SIGNATURE_BYTES)

    def validate(self, attrs: dict) -> dict:
        if ("migration_id" in attrs) != ("signature" in attrs):
            raise serializers.ValidationError(
                {"signature": ["Give migration_id and signature together."]}
            )
        return attrs
