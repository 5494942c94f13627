"""The reference backend: py_ecc's ``G2ProofOfPossession`` (pure Python, ~0.6 s per Verify).

KeyValidate, Verify, AggregateVerify and PopVerify are py_ecc's own code, so the fast backend is
checked against an independent implementation; batch verification (which py_ecc lacks) runs the
shared algorithm of :mod:`receipts.bls.core` over py_ecc's curve arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import Any

from py_ecc.bls import G2ProofOfPossession
from py_ecc.bls.g2_primitives import (
    G1_to_pubkey,
    G2_to_signature,
    pubkey_to_G1,
    signature_to_G2,
    subgroup_check,
)
from py_ecc.bls.hash_to_curve import hash_to_G2
from py_ecc.fields import optimized_bls12_381_FQ12 as FQ12
from py_ecc.optimized_bls12_381 import (
    G1,
    Z2,
    add,
    final_exponentiate,
    is_inf,
    multiply,
    neg,
    pairing,
)

from receipts.bls import core

Point = Any  # py_ecc's projective tuples


def _decode_pk(data: bytes) -> Point | None:
    """KeyValidate (draft-irtf-cfrg-bls-signature-05 section 2.5) with py_ecc, plus a
    re-encoding check (py_ecc reads the bytes as an integer, so length is checked first)."""
    if len(data) != core.PUBLIC_KEY_LENGTH or not G2ProofOfPossession.KeyValidate(data):
        return None
    point = pubkey_to_G1(data)
    return point if G1_to_pubkey(point) == data else None


def _decode_sig(data: bytes) -> Point | None:
    """signature_to_point plus the G2 subgroup check (sections 2.7, 2.9)."""
    if len(data) != core.SIGNATURE_LENGTH:
        return None
    try:
        point = signature_to_G2(data)
    except (ValueError, AssertionError):
        return None
    if not subgroup_check(point) or G2_to_signature(point) != data:
        return None
    return point


class PyEccCurve:
    """:class:`receipts.bls.core.Curve` over py_ecc's optimized BLS12-381 arithmetic."""

    def decode_pk(self, data: bytes) -> Point | None:
        return _decode_pk(data)

    def decode_sig(self, data: bytes) -> Point | None:
        return _decode_sig(data)

    def hash_to_g2(self, msg: bytes, dst: bytes) -> Point:
        return hash_to_G2(msg, dst, sha256)

    def g1_mul(self, point: Point, scalar: int) -> Point:
        return multiply(point, scalar)

    def g2_msm(self, points: Sequence[Point], scalars: Sequence[int]) -> Point:
        total = Z2
        for point, scalar in zip(points, scalars, strict=True):
            total = add(total, multiply(point, scalar))
        return total

    def g1_neg_generator(self) -> Point:
        return neg(G1)

    def pairing_product_is_one(self, pairs: Sequence[tuple[Point, Point]]) -> bool:
        product = FQ12.one()
        for g1_point, g2_point in pairs:
            if is_inf(g1_point) or is_inf(g2_point):
                continue  # e(O, Q) = e(P, O) = 1
            product = product * pairing(g2_point, g1_point, final_exponentiate=False)
        return final_exponentiate(product) == FQ12.one()


class PyEccBackend(core.CurveBackend):
    """:class:`receipts.bls.Backend` on py_ecc: the reference, and the fallback without blst."""

    name = "py_ecc"

    def __init__(self) -> None:
        self.curve = PyEccCurve()

    @core.never_raises
    def pop_verify(self, pk: bytes, pop: bytes) -> bool:
        """PopVerify (section 3.3.3): KeyValidate(pk) and CoreVerify of pk's bytes, POP tag."""
        pk_b, pop_b = core.as_bytes(pk), core.as_bytes(pop)
        if pk_b is None or pop_b is None or not self.key_validate(pk_b):
            return False
        return G2ProofOfPossession.PopVerify(pk_b, pop_b)

    @core.never_raises
    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        """Verify (section 3.3 = CoreVerify, 2.7): pk 48 B, msg any bytes, sig 96 B."""
        pk_b, msg_b, sig_b = core.as_bytes(pk), core.as_bytes(msg), core.as_bytes(sig)
        if pk_b is None or msg_b is None or sig_b is None or not self.key_validate(pk_b):
            return False
        return G2ProofOfPossession.Verify(pk_b, msg_b, sig_b)

    @core.never_raises
    def aggregate_verify(self, pks: Sequence[bytes], msgs: Sequence[bytes], sig: bytes) -> bool:
        """AggregateVerify (section 2.9) with distinct messages, len(pks) == len(msgs) >= 1."""
        pairs = core.clean_pairs(pks, msgs)
        sig_b = core.as_bytes(sig)
        if pairs is None or sig_b is None or not all(map(self.key_validate, pairs[0])):
            return False
        return G2ProofOfPossession.AggregateVerify(pairs[0], pairs[1], sig_b)

    def hash_to_g2(self, msg: bytes, dst: bytes) -> bytes:
        """RFC 9380 hash_to_curve to G2 (suite BLS12381G2_XMD:SHA-256_SSWU_RO_), compressed."""
        return G2_to_signature(hash_to_G2(bytes(msg), bytes(dst), sha256))


# Signing helpers for receipts.bls.signing (the reference for the blst ones).
def sk_to_pk(sk: int) -> bytes:
    """SkToPk (section 2.4)."""
    return G2ProofOfPossession.SkToPk(sk)


def core_sign(sk: int, msg: bytes, dst: bytes) -> bytes:
    """CoreSign (section 2.6)."""
    return G2ProofOfPossession._CoreSign(sk, msg, dst)


def aggregate(sigs: Sequence[bytes]) -> bytes:
    """Aggregate (section 2.8). Raises ValueError when a signature does not decode to a point
    of G2 (py_ecc's own Aggregate skips the subgroup check; we match blst, which does not)."""
    if any(_decode_sig(sig) is None for sig in sigs):
        raise ValueError("a signature is not a valid compressed G2 point")
    return G2ProofOfPossession.Aggregate(list(sigs))
