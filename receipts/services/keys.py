"""Key services: register (and rotate) a member's BLS public key, revoke one, and the
development-only key generator.

Keys are made on the member's machine; the server sees public keys and proofs of possession
only (docs/origin.md section 6, hole 2). A key is accepted only if it passes KeyValidate (a
canonical, non-identity point of the G1 subgroup) and its proof of possession verifies
(PopVerify), which defeats rogue-key attacks on aggregates (hole 8).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound, NotPermitted
from receipts.bls import keygen, pop_prove
from receipts.models import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, BLSKey
from receipts.site import bls_backend
from tracker.models import Member

KEYGEN_DISABLED = (
    "/keygen is disabled on this site: make your key on your own machine with "
    "`python -m receipts.client keygen`, then POST /register. (It exists only when "
    "PBTS_DEV_KEYGEN is on, for development demos.)"
)


def _holds(check: Callable[..., bool], *args: bytes) -> bool:
    """Run a backend check on untrusted bytes; a check that raises counts as failed."""
    try:
        return bool(check(*args))
    except Exception:  # malformed input must never become a 500
        return False


@dataclass(frozen=True)
class KeyRegistration:
    """Outcome of :func:`bls_key_register`: the active key, the key it replaced (if any), and
    whether a row was created (``False`` when the active key was registered again)."""

    key: BLSKey
    revoked: BLSKey | None
    created: bool


def bls_key_register(*, member: Member, public_key: bytes, pop: bytes) -> KeyRegistration:
    """Register ``public_key`` as the member's active key; any previous one is revoked.

    Args:
        member: the caller (authenticated by API token).
        public_key: 48-byte compressed G1 point.
        pop: 96-byte proof of possession (a signature of ``public_key`` under the POP tag of
            the ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``).

    Returns:
        The registration; registering the active key again is a no-op (``created=False``).

    Raises:
        InvalidInput: a wrong length, a key failing KeyValidate (off the curve, outside the
            subgroup, the identity, or a non-canonical encoding), or a proof that does not
            verify (field ``public_key`` or ``pop``).
        Conflict: the key was registered before, by anyone (field ``public_key``); a key is
            never re-bound, since receipts name keys.
    """
    public_key, pop = bytes(public_key), bytes(pop)
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise InvalidInput(
            f"A public key is {PUBLIC_KEY_BYTES} bytes; got {len(public_key)}.", field="public_key"
        )
    if len(pop) != SIGNATURE_BYTES:
        raise InvalidInput(
            f"A proof of possession is {SIGNATURE_BYTES} bytes; got {len(pop)}.", field="pop"
        )
    backend = bls_backend()
    if not _holds(backend.key_validate, public_key):
        raise InvalidInput(
            "Not a valid BLS12-381 public key (KeyValidate failed: off the curve, outside the "
            "subgroup, the point at infinity, or not canonically encoded).",
            field="public_key",
        )
    if not _holds(backend.pop_verify, public_key, pop):
        raise InvalidInput(
            "The proof of possession does not verify for this key (hole 8: rogue keys).",
            field="pop",
        )
    with transaction.atomic():
        # Serialize registrations of one member (rotation reads then writes).
        Member.objects.select_for_update().only("pk").get(pk=member.pk)
        existing = BLSKey.objects.filter(public_key=public_key).first()
        if existing is not None:
            if existing.member_id == member.pk and existing.is_active:
                return KeyRegistration(key=existing, revoked=None, created=False)
            raise Conflict(
                "This public key was registered before; keys are never reused. Make a new one.",
                field="public_key",
            )
        previous = BLSKey.objects.filter(member=member, revoked_at__isnull=True).first()
        if previous is not None:
            previous.revoked_at = timezone.now()
            previous.revoke_reason = "rotated"
            previous.save(update_fields=["revoked_at", "revoke_reason"])
        try:
            with transaction.atomic():
                key = BLSKey.objects.create(member=member, public_key=public_key, pop=pop)
        except IntegrityError as exc:  # the same key registered concurrently
            raise Conflict(
                "This public key was registered before; keys are never reused.",
                field="public_key",
            ) from exc
    return KeyRegistration(key=key, revoked=previous, created=True)


@transaction.atomic
def bls_key_revoke(*, key: BLSKey, actor: Member, reason: str) -> BLSKey:
    """Staff: revoke a member's key (e.g. reported stolen); audited with the reason.

    Receipts naming a revoked key are refused from then on; credit already verified stays.

    Raises:
        NotPermitted: the actor is not staff.
        InvalidInput: the key is already revoked.
    """
    if not actor.is_moderator:
        raise NotPermitted("Only staff revoke keys.")
    key = BLSKey.objects.select_for_update().get(pk=key.pk)
    if not key.is_active:
        raise InvalidInput("This key is already revoked.")
    key.revoked_at = timezone.now()
    key.revoke_reason = (reason or "revoked by staff")[:255]
    key.save(update_fields=["revoked_at", "revoke_reason"])
    audit_record(
        actor=actor,
        action="bls_key_revoke",
        target=key,
        old={"revoked_at": None},
        new={"revoked_at": key.revoked_at.isoformat(), "fingerprint": key.fingerprint},
        reason=reason,
    )
    return key


@dataclass(frozen=True)
class DevKeyPair:
    """A key pair made by :func:`bls_dev_keygen`: ``private_key`` is the 32-byte big-endian
    secret scalar, ``public_key`` 48 bytes, ``pop`` 96 bytes. ``repr`` hides the secret."""

    private_key: bytes
    public_key: bytes
    pop: bytes

    def __repr__(self) -> str:
        return f"DevKeyPair(public_key={self.public_key.hex()[:16]}…, private_key=<hidden>)"


def bls_dev_keygen() -> DevKeyPair:
    """Make a key pair on the server, for development demos only (``PBTS_DEV_KEYGEN``).

    Nothing is stored or logged. In production keys are made on members' machines.

    Raises:
        NotFound: ``PBTS_DEV_KEYGEN`` is off (the default).
    """
    if not settings.PBTS_DEV_KEYGEN:
        raise NotFound(KEYGEN_DISABLED)
    sk, pk = keygen(os.urandom(32))
    return DevKeyPair(private_key=sk.to_bytes(32, "big"), public_key=pk, pop=pop_prove(sk))
