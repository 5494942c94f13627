"""The signing side (clients): KeyGen, SkToPk, Sign, PopProve and Aggregate of
draft-irtf-cfrg-bls-signature-05 with the POP ciphersuite.

Keys come from py_ecc's KeyGen (section 2.3) whatever the backend. Point arithmetic uses blst
when pyblst is installed ("blst", ~1 ms per signature) and py_ecc otherwise ("py_ecc", ~0.25 s);
the two give the same bytes (the tests compare them).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from types import ModuleType

from py_ecc.bls import G2ProofOfPossession

from receipts.bls import core

IKM_MIN_LENGTH = 32  # section 2.3: IKM MUST be at least 32 bytes


def _impl(backend: str | None) -> ModuleType:
    """The module doing the point arithmetic: blst unless pyblst is missing or py_ecc is asked
    for. Raises ValueError for an unknown name, ImportError when "blst" is asked for but pyblst
    is missing."""
    if backend == "py_ecc":
        from receipts.bls import py_ecc_backend

        return py_ecc_backend
    if backend not in (None, "blst"):
        raise ValueError(f"unknown BLS backend {backend!r}; use 'blst' or 'py_ecc'")
    try:
        from receipts.bls import blst_backend
    except ImportError:
        if backend == "blst":
            raise
        from receipts.bls import py_ecc_backend

        return py_ecc_backend
    return blst_backend


def _check_sk(sk: object) -> int:
    """A secret key is an int in [1, r). Raises ValueError otherwise (section 2.3)."""
    if not isinstance(sk, int) or isinstance(sk, bool) or not 0 < sk < core.CURVE_ORDER:
        raise ValueError("a secret key is an integer in [1, r)")
    return sk


def keygen(ikm: bytes | None = None, *, backend: str | None = None) -> tuple[int, bytes]:
    """KeyGen (section 2.3, py_ecc's implementation, key_info empty) then SkToPk.

    ikm: at least 32 bytes of secret keying material; None draws 32 bytes from ``secrets``.
    Returns (sk, pk): the secret scalar and the 48-byte compressed public key.
    Raises ValueError when ikm is shorter than 32 bytes or not bytes.
    """
    if ikm is None:
        ikm = secrets.token_bytes(IKM_MIN_LENGTH)
    data = core.as_bytes(ikm)
    if data is None or len(data) < IKM_MIN_LENGTH:
        raise ValueError(f"IKM must be at least {IKM_MIN_LENGTH} bytes")
    sk = G2ProofOfPossession.KeyGen(data)
    return sk, sk_to_pk(sk, backend=backend)


def sk_to_pk(sk: int, *, backend: str | None = None) -> bytes:
    """SkToPk (section 2.4): the 48-byte compressed public key of ``sk``.
    Raises ValueError for a secret key outside [1, r)."""
    return _impl(backend).sk_to_pk(_check_sk(sk))


def sign(sk: int, msg: bytes, *, backend: str | None = None) -> bytes:
    """Sign (section 3.3 = CoreSign, section 2.6) with the message tag
    ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``: 96-byte compressed G2 signature.
    Raises ValueError for a bad secret key or a message that is not bytes."""
    data = core.as_bytes(msg)
    if data is None:
        raise ValueError("the message must be bytes")
    return _impl(backend).core_sign(_check_sk(sk), data, core.DST_SIGNATURE)


def pop_prove(sk: int, *, backend: str | None = None) -> bytes:
    """PopProve (section 3.3.2): CoreSign of the public key's bytes with the tag
    ``BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``. Raises ValueError for a bad secret key."""
    impl = _impl(backend)
    sk = _check_sk(sk)
    return impl.core_sign(sk, impl.sk_to_pk(sk), core.DST_POP)


def aggregate(sigs: Sequence[bytes], *, backend: str | None = None) -> bytes:
    """Aggregate (section 2.8): one 96-byte signature, the sum of ``sigs``.
    Raises ValueError for an empty list or a signature that is not a valid G2 point."""
    clean = [core.as_bytes(sig, core.SIGNATURE_LENGTH) for sig in sigs]
    if not clean:
        raise ValueError("nothing to aggregate")
    if any(sig is None for sig in clean):
        raise ValueError("a signature is not 96 bytes")
    return _impl(backend).aggregate(clean)
