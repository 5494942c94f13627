"""The fast backend: the shared algorithms of :mod:`receipts.bls.core` on top of pyblst 0.3.15.

pyblst (bindings of supranational/blst) exposes curve primitives only: G1/G2 ``uncompress``
(rejects bad flags, coordinates >= p, points off the curve and outside the subgroup),
``compress``, ``+``, ``-``, ``scalar_mul``, ``hash_to_group(msg, dst)`` (RFC 9380 ``_RO_``),
``miller_loop`` and ``final_verify(a, b)`` (final exponentiations equal). The BLS layer
(KeyValidate, the POP tags, aggregation and batch verification) is ours.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from pyblst import BlstFP12Element, BlstP1Element, BlstP2Element, final_verify, miller_loop

from receipts.bls import core, msm

# The generator of G1 (draft-irtf-cfrg-pairing-friendly-curves, BLS12-381), compressed.
_G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)


@functools.lru_cache(maxsize=8192)
def _decode_pk(data: bytes) -> BlstP1Element | None:
    """KeyValidate (draft-irtf-cfrg-bls-signature-05 section 2.5): canonical compressed
    encoding, on the curve, in G1, not the identity. Cached: the answer for given bytes never
    changes, and the server sees the same registered keys again and again."""
    try:
        point = BlstP1Element.uncompress(data)
    except ValueError:
        return None
    if point.compress() != data or point == BlstP1Element():
        return None
    return point


def _decode_sig(data: bytes) -> BlstP2Element | None:
    """signature_to_point plus the G2 subgroup check (sections 2.7, 2.9); the identity is a
    valid signature point. Re-encoding guards against any non-canonical form blst accepted."""
    try:
        point = BlstP2Element.uncompress(data)
    except ValueError:
        return None
    return point if point.compress() == data else None


class BlstCurve:
    """:class:`receipts.bls.core.Curve` over pyblst elements."""

    def __init__(self) -> None:
        self._neg_g1 = -BlstP1Element.uncompress(_G1_GENERATOR)

    def decode_pk(self, data: bytes) -> BlstP1Element | None:
        return _decode_pk(data)

    def decode_sig(self, data: bytes) -> BlstP2Element | None:
        return _decode_sig(data)

    def hash_to_g2(self, msg: bytes, dst: bytes) -> BlstP2Element:
        return BlstP2Element.hash_to_group(msg, dst)

    def g1_mul(self, point: BlstP1Element, scalar: int) -> BlstP1Element:
        return point.scalar_mul(scalar)

    def g2_msm(self, points: Sequence[BlstP2Element], scalars: Sequence[int]) -> BlstP2Element:
        return msm.msm(points, scalars, core.BATCH_SCALAR_BITS, BlstP2Element)

    def g1_neg_generator(self) -> BlstP1Element:
        return self._neg_g1

    def pairing_product_is_one(self, pairs: Sequence[tuple[BlstP1Element, BlstP2Element]]) -> bool:
        product = BlstFP12Element()
        for g1_point, g2_point in pairs:
            product = product * miller_loop(g1_point, g2_point)
        return final_verify(product, BlstFP12Element())


class BlstBackend(core.CurveBackend):
    """:class:`receipts.bls.Backend` on blst: ~2.5 ms per Verify, batches of receipts grouped by
    signer ~0.5 ms per signature (see docs/receipts.md, "Speed")."""

    name = "blst"

    def __init__(self) -> None:
        self.curve = BlstCurve()

    @core.never_raises
    def pop_verify(self, pk: bytes, pop: bytes) -> bool:
        """PopVerify (section 3.3.3): KeyValidate(pk) and CoreVerify of pk's bytes, POP tag."""
        return core.core_verify(self.curve, pk, pk, pop, core.DST_POP)

    @core.never_raises
    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        """Verify (section 3.3 = CoreVerify, 2.7): pk 48 B, msg any bytes, sig 96 B."""
        return core.core_verify(self.curve, pk, msg, sig, core.DST_SIGNATURE)

    @core.never_raises
    def aggregate_verify(self, pks: Sequence[bytes], msgs: Sequence[bytes], sig: bytes) -> bool:
        """AggregateVerify (section 2.9) with distinct messages, len(pks) == len(msgs) >= 1."""
        return core.core_aggregate_verify(self.curve, pks, msgs, sig)

    def hash_to_g2(self, msg: bytes, dst: bytes) -> bytes:
        """RFC 9380 hash_to_curve to G2 (suite BLS12381G2_XMD:SHA-256_SSWU_RO_), compressed.
        Raises ValueError for a tag longer than 255 bytes (RFC 9380 section 5.3.3)."""
        return BlstP2Element.hash_to_group(bytes(msg), bytes(dst)).compress()

    @staticmethod
    def clear_caches() -> None:
        """Forget decoded public keys (benchmarks measure the cold path)."""
        _decode_pk.cache_clear()


# Signing helpers for receipts.bls.signing: the same operations as py_ecc, byte for byte.
def sk_to_pk(sk: int) -> bytes:
    """SkToPk (section 2.4): sk * g1, compressed."""
    return BlstP1Element.uncompress(_G1_GENERATOR).scalar_mul(sk).compress()


def core_sign(sk: int, msg: bytes, dst: bytes) -> bytes:
    """CoreSign (section 2.6): sk * hash_to_G2(msg, dst), compressed."""
    return BlstP2Element.hash_to_group(msg, dst).scalar_mul(sk).compress()


def aggregate(sigs: Sequence[bytes]) -> bytes:
    """Aggregate (section 2.8): the sum of the signature points. Raises ValueError when a
    signature does not decode to a point of G2."""
    total = BlstP2Element()
    for sig in sigs:
        point = _decode_sig(sig)
        if point is None:
            raise ValueError("a signature is not a valid compressed G2 point")
        total = total + point
    return total.compress()
