"""BLS signatures for PBTS receipts: ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``
(draft-irtf-cfrg-bls-signature-05; py_ecc's ``G2ProofOfPossession``). Public keys are 48-byte
compressed G1 points, signatures 96-byte compressed G2 points.

Verification has two backends with one interface and the same answers: ``"blst"`` (pyblst, fast)
and ``"py_ecc"`` (pure Python reference and fallback). Signing helpers are for clients.
Plain Python, no Django import.
"""

from __future__ import annotations

from collections.abc import Sequence

from receipts.bls.core import (
    DST_POP,
    DST_SIGNATURE,
    PUBLIC_KEY_LENGTH,
    SIGNATURE_LENGTH,
    Backend,
    SignedItem,
)
from receipts.bls.signing import aggregate, keygen, pop_prove, sign, sk_to_pk

__all__ = [
    "DST_POP",
    "DST_SIGNATURE",
    "PUBLIC_KEY_LENGTH",
    "SIGNATURE_LENGTH",
    "Backend",
    "SignedItem",
    "aggregate",
    "find_invalid",
    "get_backend",
    "keygen",
    "pop_prove",
    "sign",
    "sk_to_pk",
]

BACKEND_NAMES = ("blst", "py_ecc")
_backends: dict[str, Backend] = {}


def get_backend(name: str = "blst") -> Backend:
    """The verification backend called ``name``: "blst" (pyblst) or "py_ecc".

    Raises ValueError for any other name, and ImportError for "blst" when pyblst is not
    installed (choose "py_ecc" explicitly: it is ~300 times slower).
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown BLS backend {name!r}; use one of {BACKEND_NAMES}")
    if name not in _backends:
        if name == "blst":
            from receipts.bls.blst_backend import BlstBackend

            _backends[name] = BlstBackend()
        else:
            from receipts.bls.py_ecc_backend import PyEccBackend

            _backends[name] = PyEccBackend()
    return _backends[name]


def find_invalid(backend: Backend, items: Sequence[SignedItem]) -> list[int]:
    """Indexes (ascending) of the invalid items of ``items``.

    One batch_verify of everything; if it fails, the batch is cut in halves and each failing half
    again, down to single items. Valid items always pass a batch, so a bad item never holds back
    good ones. When the left half passes, the right half is known to fail and is split without
    its own check; a single item is only reported after failing a check of its own. Costs about
    2k log2(n/k) batch checks for k bad items among n.
    """
    bad: list[int] = []
    _bisect(backend, items, list(range(len(items))), bad, known_bad=False)
    return sorted(bad)


def _bisect(
    backend: Backend,
    items: Sequence[SignedItem],
    indexes: list[int],
    bad: list[int],
    *,
    known_bad: bool,
) -> None:
    """Append to ``bad`` the invalid items among ``items[i] for i in indexes``."""
    if not indexes:
        return
    single = len(indexes) == 1
    if (single or not known_bad) and backend.batch_verify([items[i] for i in indexes]):
        return
    if single:
        bad.append(indexes[0])
        return
    middle = len(indexes) // 2
    left, right = indexes[:middle], indexes[middle:]
    before = len(bad)
    _bisect(backend, items, left, bad, known_bad=False)
    _bisect(backend, items, right, bad, known_bad=len(bad) == before)
