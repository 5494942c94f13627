"""Ciphersuite constants, the backend interface and the verification algorithms shared by the
backends.

Ciphersuite: ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` of draft-irtf-cfrg-bls-signature-05
(section 4.2.3, proof-of-possession scheme): public keys are compressed G1 points (48 bytes),
signatures compressed G2 points (96 bytes), messages are hashed to G2 with RFC 9380
``hash_to_curve`` (suite ``BLS12381G2_XMD:SHA-256_SSWU_RO_``).

The algorithms here (CoreVerify, AggregateVerify, randomized batch verification) are written once
over a small set of curve operations (:class:`Curve`); each backend supplies the operations.
No Django import: the server, the client and the tests share this code.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, TypeVar

# draft-irtf-cfrg-bls-signature-05, section 4.2.3: the POP ciphersuite's two tags.
DST_SIGNATURE = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
DST_POP = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
PUBLIC_KEY_LENGTH = 48
SIGNATURE_LENGTH = 96
# Order r of G1, G2 and GT (draft-irtf-cfrg-pairing-friendly-curves, BLS12-381).
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
# Compressed point at infinity (ZCash serialization: compression and infinity flags set).
G1_INFINITY = bytes([0xC0]) + bytes(47)
G2_INFINITY = bytes([0xC0]) + bytes(95)
# Randomized batch verification: each signature gets an independent scalar in [1, 2**64).
BATCH_SCALAR_BITS = 64


@dataclass(frozen=True, slots=True)
class SignedItem:
    """One signature to check: a single signature (``len(pks) == 1``) or an aggregate signature
    over distinct messages, ``msgs[i]`` signed by ``pks[i]``.

    pks: compressed G1 public keys, 48 bytes each; msgs: the signed bytes; sig: a compressed G2
    signature, 96 bytes. Nothing is validated here: the backends reject bad items by returning
    False.
    """

    pks: tuple[bytes, ...]
    msgs: tuple[bytes, ...]
    sig: bytes


class Backend(Protocol):
    """Verification side of the ciphersuite. Every method returns False, never raises, on bad
    input (wrong types, lengths, non-canonical encodings, points off the curve or outside the
    subgroup, the identity as a public key)."""

    name: str

    def key_validate(self, pk: bytes) -> bool:
        """KeyValidate (draft-irtf-cfrg-bls-signature-05 section 2.5)."""
        ...

    def pop_verify(self, pk: bytes, pop: bytes) -> bool:
        """PopVerify (section 3.3.3)."""
        ...

    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        """Verify = CoreVerify (sections 2.7, 3.3)."""
        ...

    def aggregate_verify(self, pks: Sequence[bytes], msgs: Sequence[bytes], sig: bytes) -> bool:
        """AggregateVerify (section 2.9) with distinct messages required."""
        ...

    def batch_verify(self, items: Sequence[SignedItem]) -> bool:
        """True when every item is valid (randomized batch verification)."""
        ...


G1 = TypeVar("G1")
G2 = TypeVar("G2")


class Curve(Protocol[G1, G2]):
    """The curve operations a backend supplies to the shared algorithms."""

    def decode_pk(self, data: bytes) -> G1 | None:
        """Public key bytes -> point, or None unless KeyValidate holds (section 2.5)."""
        ...

    def decode_sig(self, data: bytes) -> G2 | None:
        """Signature bytes -> point, or None unless signature_to_point succeeds and the point
        is in G2 (sections 2.7 step 2, 2.9 step 2)."""
        ...

    def hash_to_g2(self, msg: bytes, dst: bytes) -> G2:
        """RFC 9380 hash_to_curve, suite BLS12381G2_XMD:SHA-256_SSWU_RO_, with tag dst."""
        ...

    def g1_mul(self, point: G1, scalar: int) -> G1: ...

    def g2_msm(self, points: Sequence[G2], scalars: Sequence[int]) -> G2:
        """sum(scalar_i * point_i); scalars are below 2**BATCH_SCALAR_BITS."""
        ...

    def g1_neg_generator(self) -> G1: ...

    def pairing_product_is_one(self, pairs: Sequence[tuple[G1, G2]]) -> bool:
        """prod e(P_i, Q_i) == 1 in GT (one final exponentiation)."""
        ...


def as_bytes(value: object, length: int | None = None) -> bytes | None:
    """``value`` as immutable bytes (bytes, bytearray or memoryview), or None when it is another
    type or, with ``length``, of another length."""
    if not isinstance(value, bytes | bytearray | memoryview):
        return None
    data = bytes(value)
    if length is not None and len(data) != length:
        return None
    return data


def never_raises(method: Callable[..., bool]) -> Callable[..., bool]:
    """Turn any exception of a verification method into False: bad bytes are an answer, not an
    error (a malformed report must not crash the worker that checks it)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> bool:
        try:
            return bool(method(*args, **kwargs))
        except Exception:
            return False

    return wrapper


def random_scalar() -> int:
    """A fresh uniformly random scalar in [1, 2**64) from the ``secrets`` module (CSPRNG)."""
    return secrets.randbelow((1 << BATCH_SCALAR_BITS) - 1) + 1


def clean_pairs(pks: object, msgs: object) -> tuple[list[bytes], list[bytes]] | None:
    """Validate the shape of an (aggregate) signing set: at least one pair, as many keys as
    messages, keys of 48 bytes, messages of bytes, and no message twice. Returns the lists as
    bytes, or None.

    Distinct messages: draft-irtf-cfrg-bls-signature-05 section 3.1.1 requires them only for the
    basic scheme; we require them for every aggregate so that an aggregate never counts one
    receipt twice, and so that the API stays safe even for a key that skipped its PoP.
    """
    if not _is_list_like(pks) or not _is_list_like(msgs):
        return None
    if len(pks) == 0 or len(pks) != len(msgs):
        return None
    clean_pks = _all_bytes(pks, PUBLIC_KEY_LENGTH)
    clean_msgs = _all_bytes(msgs, None)
    if clean_pks is None or clean_msgs is None or len(set(clean_msgs)) != len(clean_msgs):
        return None
    return clean_pks, clean_msgs


def _is_list_like(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | str)


def _all_bytes(values: Sequence[object], length: int | None) -> list[bytes] | None:
    """Every value as bytes (of ``length``), or None if one is not."""
    result = []
    for value in values:
        data = as_bytes(value, length)
        if data is None:
            return None
        result.append(data)
    return result


def core_verify(curve: Curve[Any, Any], pk: object, msg: object, sig: object, dst: bytes) -> bool:
    """CoreVerify (draft-irtf-cfrg-bls-signature-05 section 2.7) with KeyValidate on ``pk``:
    e(pk, H(msg)) == e(g1, sig). Returns False on any bad input."""
    pk_b, msg_b = as_bytes(pk, PUBLIC_KEY_LENGTH), as_bytes(msg)
    sig_b = as_bytes(sig, SIGNATURE_LENGTH)
    if pk_b is None or msg_b is None or sig_b is None:
        return False
    pk_point, sig_point = curve.decode_pk(pk_b), curve.decode_sig(sig_b)
    if pk_point is None or sig_point is None:
        return False
    pairs = [(pk_point, curve.hash_to_g2(msg_b, dst)), (curve.g1_neg_generator(), sig_point)]
    return curve.pairing_product_is_one(pairs)


def core_aggregate_verify(curve: Curve[Any, Any], pks: object, msgs: object, sig: object) -> bool:
    """AggregateVerify (section 2.9, POP ciphersuite tag) with distinct messages required:
    prod e(pk_i, H(msg_i)) == e(g1, sig). Returns False on any bad input."""
    pairs_in = clean_pairs(pks, msgs)
    sig_b = as_bytes(sig, SIGNATURE_LENGTH)
    if pairs_in is None or sig_b is None:
        return False
    sig_point = curve.decode_sig(sig_b)
    if sig_point is None:
        return False
    pairs = [(curve.g1_neg_generator(), sig_point)]
    for pk_b, msg_b in zip(*pairs_in, strict=True):
        pk_point = curve.decode_pk(pk_b)
        if pk_point is None:
            return False
        pairs.append((pk_point, curve.hash_to_g2(msg_b, DST_SIGNATURE)))
    return curve.pairing_product_is_one(pairs)


def batch_verify(curve: Curve[Any, Any], items: Sequence[SignedItem]) -> bool:
    """Randomized batch verification of independent (aggregate) signatures.

    With a fresh random scalar r_i per item (:func:`random_scalar`), and the pairs grouped by
    public key, it checks one equation:

        prod over keys pk of e(pk, sum r_i * H(m_j))  ==  e(g1, sum r_i * sig_i)

    where the inner sum runs over every (pk, m_j) pair of every item i. It holds for valid items;
    for any invalid item it fails except with probability about 2**-64. Without the scalars two
    invalid signatures whose sum is valid would pass (the "cancelling" attack). Grouping by key
    costs one Miller loop per distinct signer instead of one per message. An empty batch is
    vacuously valid (True); a single item is checked without scalars.
    """
    if not isinstance(items, Sequence) or any(not isinstance(i, SignedItem) for i in items):
        return False
    if len(items) == 0:
        return True
    if len(items) == 1:
        return core_aggregate_verify(curve, items[0].pks, items[0].msgs, items[0].sig)
    collected = _collect_batch(curve, items)
    if collected is None:
        return False
    sig_points, sig_scalars, groups = collected
    pairs = [(curve.g1_neg_generator(), curve.g2_msm(sig_points, sig_scalars))]
    for pk_b, (hashes, scalars) in groups.items():
        pk_point = curve.decode_pk(pk_b)
        if pk_point is None:
            return False
        if len(hashes) == 1:  # one message: the scalar is cheaper on the G1 side
            pairs.append((curve.g1_mul(pk_point, scalars[0]), hashes[0]))
        else:
            pairs.append((pk_point, curve.g2_msm(hashes, scalars)))
    return curve.pairing_product_is_one(pairs)


_Groups = dict[bytes, tuple[list[Any], list[int]]]


def _collect_batch(
    curve: Curve[Any, Any], items: Sequence[SignedItem]
) -> tuple[list[Any], list[int], _Groups] | None:
    """Decode every signature, draw its scalar and hash every message into its signer's group.
    None as soon as one item is malformed."""
    sig_points: list[Any] = []
    sig_scalars: list[int] = []
    groups: _Groups = {}
    for item in items:
        pairs_in = clean_pairs(item.pks, item.msgs)
        sig_b = as_bytes(item.sig, SIGNATURE_LENGTH)
        if pairs_in is None or sig_b is None:
            return None
        sig_point = curve.decode_sig(sig_b)
        if sig_point is None:
            return None
        scalar = random_scalar()
        sig_points.append(sig_point)
        sig_scalars.append(scalar)
        for pk_b, msg_b in zip(*pairs_in, strict=True):
            hashes, scalars = groups.setdefault(pk_b, ([], []))
            hashes.append(curve.hash_to_g2(msg_b, DST_SIGNATURE))
            scalars.append(scalar)
    return sig_points, sig_scalars, groups


class CurveBackend:
    """What both backends do the same way over their ``curve``: KeyValidate, signature
    validation and randomized batch verification."""

    curve: Curve[Any, Any]

    @never_raises
    def key_validate(self, pk: bytes) -> bool:
        """KeyValidate (draft-irtf-cfrg-bls-signature-05 section 2.5) of a 48-byte key."""
        data = as_bytes(pk, PUBLIC_KEY_LENGTH)
        return data is not None and self.curve.decode_pk(data) is not None

    @never_raises
    def signature_validate(self, sig: bytes) -> bool:
        """signature_to_point succeeds and the point is in G2 (the identity included)."""
        data = as_bytes(sig, SIGNATURE_LENGTH)
        return data is not None and self.curve.decode_sig(data) is not None

    @never_raises
    def batch_verify(self, items: Sequence[SignedItem]) -> bool:
        """True when every item verifies: :func:`batch_verify`."""
        return batch_verify(self.curve, items)
