"""Input validation of the chain endpoints (field-level messages on error), the fields of the
original PBTS /contract API that we refuse, and the response shapes (for the OpenAPI schema)."""

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


NO_PASSWORD_MATERIAL = "PBTS never stores password material on chain; remove this field."
SIZES_FROM_LEDGER = (
    "Sizes come from the site's verified ledger (BLS receipts), never from a request; "
    "remove this field."
)
REFUSED_FIELDS: dict[str, str] = {
    # Hole 11 of the original: salt and password hash were public on chain.
    "salt": NO_PASSWORD_MATERIAL,
    "password_hash": NO_PASSWORD_MATERIAL,
    "passwordHash": NO_PASSWORD_MATERIAL,
    # Hole 1/9: anyone could write any figures; ours are the receipts' verified totals.
    "download_size": SIZES_FROM_LEDGER,
    "upload_size": SIZES_FROM_LEDGER,
    "downloadSize": SIZES_FROM_LEDGER,
    "uploadSize": SIZES_FROM_LEDGER,
    # The Rust port's /contract/init took the chain set-up (and a private key) from the body.
    "private_key": (
        "PBTS never accepts a private key over HTTP: the site's key is PBTS_CHAIN_PRIVATE_KEY "
        "in the server's environment. Remove this field (and treat that key as exposed)."
    ),
    "rpc_url": (
        "The RPC endpoint is the operator's setting (PBTS_CHAIN_RPC_URL), never a request's; "
        "remove this field."
    ),
    "factory_address": (
        "The factory is recorded by the operator (manage.py chain_deploy_factory), never by a "
        "request; remove this field."
    ),
}
"""Fields of the original PBTS /contract requests that this site refuses (HTTP 400, one
message per field) instead of ignoring them: every /contract write checks them all."""


class OriginalRequestSerializer(serializers.Serializer):
    """A /contract write body: a field of :data:`REFUSED_FIELDS` is an error on that field
    (reported together with the other field errors), never silently ignored."""

    def to_internal_value(self, data):
        refused = {}
        if hasattr(data, "keys"):
            refused = {name: [REFUSED_FIELDS[name]] for name in data if name in REFUSED_FIELDS}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from None
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class InitSerializer(OriginalRequestSerializer):
    """POST /contract/init: deploy the factory if needed, then create this site's contract.
    ``referrer_address`` (the original's name) is accepted for ``referrer``."""

    referrer = serializers.CharField(required=False, allow_blank=True, max_length=42)
    referrer_address = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=42,
        help_text="The original API's name for `referrer`.",
    )
    attestation = serializers.CharField(required=False, allow_blank=True, max_length=20000)

    def validate_attestation(self, value: str) -> bytes:
        return decode_blob(value) if value else b""

    def validate(self, attrs: dict) -> dict:
        alias = attrs.pop("referrer_address", None)
        if alias is not None:
            if attrs.get("referrer", alias) != alias:
                raise serializers.ValidationError(
                    {"referrer_address": ["Give referrer or referrer_address, not two values."]}
                )
            attrs["referrer"] = alias
        return attrs


class UsernameSerializer(OriginalRequestSerializer):
    """A member named by username."""

    username = serializers.CharField(max_length=150)


class UpdateSerializer(OriginalRequestSerializer):
    """POST /contract/update: one member, or every changed member when absent."""

    username = serializers.CharField(max_length=150, required=False)


class SignatureSerializer(serializers.Serializer):
    """A 96-byte BLS signature, hex (0x) or base64."""

    signature = serializers.CharField(max_length=300)

    def validate_signature(self, value: str) -> bytes:
        return decode_blob(value, size=SIGNATURE_BYTES)


class MigrateSerializer(OriginalRequestSerializer):
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


# --- response shapes (OpenAPI only: the views answer the selectors' dicts) ------------------


class ContractErrorSerializer(serializers.Serializer):
    """Every /contract error: ``success`` false and ``error`` (the original's keys), plus
    ``detail`` (and ``status``, the chain's state, for chain failures) or one list of messages
    per faulty field, e.g. ``{"password_hash": ["..."], "success": false, "error": "..."}``."""

    success = serializers.BooleanField(help_text="Always false.")
    error = serializers.CharField(help_text="The messages in one line.")
    detail = serializers.CharField(required=False)
    status = serializers.CharField(required=False, help_text="Chain failures: the chain's state.")


class OriginalUserSerializer(serializers.Serializer):
    """The original's ``user`` object, without its password fields."""

    username = serializers.CharField()
    downloadSize = serializers.IntegerField(help_text="Bytes.")  # the original key
    uploadSize = serializers.IntegerField(help_text="Bytes.")  # the original key
    ratio = serializers.FloatField(
        allow_null=True, help_text="uploadSize / downloadSize; null when downloadSize is 0."
    )


class ContractStatusSerializer(serializers.Serializer):
    """GET /contract/status (and POST /contract/init's answer, with the staff fields)."""

    success = serializers.BooleanField()
    error = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    configured = serializers.BooleanField()
    connected = serializers.BooleanField()
    status = serializers.CharField()
    checked_at = serializers.DateTimeField(allow_null=True)
    chain_id = serializers.IntegerField(allow_null=True)
    account = serializers.CharField()
    account_address = serializers.CharField(allow_null=True)
    factory = serializers.CharField(allow_null=True)
    factory_address = serializers.CharField(allow_null=True)
    reputation = serializers.CharField(allow_null=True)
    reputation_address = serializers.CharField(allow_null=True)
    referrer = serializers.CharField(allow_null=True)
    referrer_address = serializers.CharField(allow_null=True)
    open_transactions = serializers.IntegerField()
    members_waiting = serializers.IntegerField()
    last_push = serializers.DictField(allow_null=True)
    rpc_url = serializers.CharField(required=False, help_text="Staff only, masked.")
    status_detail = serializers.CharField(required=False, allow_blank=True)


class ContractUserSerializer(serializers.Serializer):
    """GET /contract/user/<name>: today's fields plus the original's."""

    success = serializers.BooleanField(help_text="True when the sizes were read from the contract.")
    error = serializers.CharField(required=False)
    user = OriginalUserSerializer()
    sizes_from = serializers.ChoiceField(choices=["contract", "ledger"])
    contract_address = serializers.CharField(allow_null=True)
    reputation_address = serializers.CharField(allow_null=True)
    username = serializers.CharField()
    record_id = serializers.CharField(allow_null=True)
    verified_uploaded = serializers.IntegerField()
    verified_downloaded = serializers.IntegerField()
    imported = serializers.DictField(allow_null=True)
    published = serializers.DictField(allow_null=True)
    on_chain = serializers.DictField(allow_null=True)


class ContractPushSerializer(serializers.Serializer):
    """POST /contract/register and /contract/update: the push run and the original's keys."""

    success = serializers.BooleanField(help_text="False when a batch failed (reverted).")
    error = serializers.CharField(required=False)
    message = serializers.CharField()
    username = serializers.CharField(allow_null=True)
    tx_hash = serializers.CharField(allow_null=True)
    reputation_address = serializers.CharField(allow_null=True)
    push = serializers.DictField()
    user = OriginalUserSerializer(required=False)
    sizes_from = serializers.CharField(required=False)
    download_size = serializers.IntegerField(required=False)
    upload_size = serializers.IntegerField(required=False)
    member = serializers.DictField(required=False, help_text="/contract/register only.")


class ContractMigrationSerializer(serializers.Serializer):
    """POST /contract/migrate: the migration request and the original's keys (``message`` is
    the challenge to sign, hex, while ``status`` is "challenged")."""

    success = serializers.BooleanField(help_text="False when the migration failed.")
    username = serializers.CharField()
    reputation_address = serializers.CharField(allow_null=True)
    id = serializers.IntegerField()
    status = serializers.CharField()
    record_id = serializers.CharField()
    contract = serializers.CharField()
    chain_id = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField()
    tx_hash = serializers.CharField(allow_null=True)
    block = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True)
    imported_uploaded = serializers.IntegerField(allow_null=True)
    imported_downloaded = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(required=False)
