"""The ``pbts_receipt`` extension (BEP 10): receipts travel from downloader to uploader.

Reference: docs/bep10.md (byte-level vectors there are checked by
``receipts/tests/test_peer_extension.py``). Pure functions and small classes; no I/O, no
asyncio, no Django.

Extension handshake (BEP 10, extended message id 0, a bencoded dictionary) keys added by PBTS:

- ``m`` / ``pbts_receipt``: the sender's local id for the extension (1..255);
- ``pbts_pk``: the sender's BLS public key, 48 bytes (compressed G1);
- ``pbts_realm``: the sender's realm id, 32 bytes (``receipts.format.realm_id``);
- ``pbts_v``: protocol version, the integer 1.

Receipts are exchanged only when both handshakes carry all four, with the same realm, valid
and different keys. Extension payload (after the BEP 10 extended id byte)::

    u8 type | u8 count | count entries
    type 1 RECEIPTS (downloader -> uploader): entry = 181-byte v1 receipt || 96-byte signature
    type 2 ACK      (uploader -> downloader): entry = 32-byte receipt id || u8 status

1 <= count <= MAX_ENTRIES (32). Anything else is malformed or oversized (:class:`BadMessage`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from receipts import bls
from receipts.format import (
    PUBLIC_KEY_LENGTH,
    REALM_LENGTH,
    RECEIPT_LENGTH,
    Receipt,
    time_bucket,
)

NAME = b"pbts_receipt"
KEY_PK = b"pbts_pk"
KEY_REALM = b"pbts_realm"
KEY_VERSION = b"pbts_v"
VERSION = 1
LOCAL_ID = 1
"""The id this client gives ``pbts_receipt`` in its own ``m`` dictionary (BEP 10: any 1..255;
the sender of a message uses the id the *receiver* advertised)."""

MSG_RECEIPTS = 1
MSG_ACK = 2
SIGNATURE_LENGTH = bls.SIGNATURE_LENGTH  # 96
RECEIPT_ID_LENGTH = 32
SIGNED_ENTRY = RECEIPT_LENGTH + SIGNATURE_LENGTH  # 277
ACK_ENTRY = RECEIPT_ID_LENGTH + 1  # 33
MAX_ENTRIES = 32
MAX_PAYLOAD = 2 + MAX_ENTRIES * SIGNED_ENTRY  # 8866 bytes: the largest valid message
MAX_STRIKES = 8
"""Misbehaviour count (per connection) at which the peer is disconnected (docs/bep10.md)."""
PAST_BUCKETS = 60
"""A received receipt's time bucket may be this many 60-second buckets old (one hour)."""
FUTURE_BUCKETS = 1
"""... and this many buckets ahead of ours (clock skew), as the site allows."""


class AckStatus(IntEnum):
    """Per-receipt answer of an ACK entry."""

    STORED = 0
    DUPLICATE = 1
    REFUSED = 2


class BadMessage(ValueError):
    """A ``pbts_receipt`` payload that cannot be decoded; ``kind`` is "malformed" or
    "oversized". The receiver drops it and counts a strike."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """One receipt's 181 bytes and the downloader's 96-byte signature over them."""

    data: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class ReceiptsMessage:
    """Type 1: receipts from the downloader."""

    entries: tuple[SignedReceipt, ...]


@dataclass(frozen=True, slots=True)
class AckMessage:
    """Type 2: the uploader's answer, one (receipt id, status) per receipt it decided on."""

    entries: tuple[tuple[bytes, AckStatus], ...]


# --- handshake ---------------------------------------------------------------------------------


def handshake_fields(pk: bytes, realm: bytes) -> dict[bytes, object]:
    """The PBTS keys to merge into this client's extension handshake dictionary (its ``m``
    entry included). Raises ValueError for a key or realm of the wrong length."""
    if len(pk) != PUBLIC_KEY_LENGTH or len(realm) != REALM_LENGTH:
        raise ValueError("pk must be 48 bytes and realm 32 bytes")
    return {b"m": {NAME: LOCAL_ID}, KEY_PK: pk, KEY_REALM: realm, KEY_VERSION: VERSION}


@dataclass(frozen=True, slots=True)
class PeerReceiptInfo:
    """What a remote extension handshake says about receipts: ``enabled`` (exchange
    receipts), else ``reason`` why not; ``remote_id`` the id to send our messages with."""

    enabled: bool
    reason: str = ""
    remote_id: int = 0
    pk: bytes = b""
    realm: bytes = b""


def peer_receipt_info(
    handshake: dict[bytes, object], *, my_pk: bytes, my_realm: bytes
) -> PeerReceiptInfo:
    """Decide from the remote's decoded extension handshake whether receipts are exchanged.

    Disabled (plain BitTorrent, never an error) when: no ``pbts_receipt`` in ``m`` (or id 0,
    which BEP 10 uses to withdraw an extension), version not 1, ``pbts_pk`` not a valid 48-byte
    key (KeyValidate), ``pbts_realm`` not 32 bytes or another realm, or the same key as ours.
    """
    m = handshake.get(b"m")
    remote_id = m.get(NAME) if isinstance(m, dict) else None
    if not isinstance(remote_id, int) or isinstance(remote_id, bool) or not 1 <= remote_id <= 255:
        return PeerReceiptInfo(False, "no pbts_receipt extension")
    if handshake.get(KEY_VERSION) != VERSION:
        return PeerReceiptInfo(False, "unsupported pbts_v")
    pk, realm = handshake.get(KEY_PK), handshake.get(KEY_REALM)
    if not isinstance(pk, bytes) or len(pk) != PUBLIC_KEY_LENGTH:
        return PeerReceiptInfo(False, "pbts_pk is not 48 bytes")
    if not isinstance(realm, bytes) or len(realm) != REALM_LENGTH:
        return PeerReceiptInfo(False, "pbts_realm is not 32 bytes")
    if realm != my_realm:
        return PeerReceiptInfo(False, "another realm")
    if pk == my_pk:
        return PeerReceiptInfo(False, "the same key as ours")
    if not _backend().key_validate(pk):
        return PeerReceiptInfo(False, "pbts_pk is not a valid public key")
    return PeerReceiptInfo(True, "", remote_id, pk, realm)


# --- messages ----------------------------------------------------------------------------------


def encode_receipts(entries: Sequence[SignedReceipt]) -> bytes:
    """Type 1 payload. Raises ValueError for 0 or more than 32 entries or wrong lengths."""
    _check_count(len(entries))
    parts = [bytes((MSG_RECEIPTS, len(entries)))]
    for entry in entries:
        if len(entry.data) != RECEIPT_LENGTH or len(entry.signature) != SIGNATURE_LENGTH:
            raise ValueError("a receipt is 181 bytes and its signature 96")
        parts += (entry.data, entry.signature)
    return b"".join(parts)


def encode_ack(entries: Sequence[tuple[bytes, AckStatus]]) -> bytes:
    """Type 2 payload. Raises ValueError for 0 or more than 32 entries or a bad id."""
    _check_count(len(entries))
    parts = [bytes((MSG_ACK, len(entries)))]
    for receipt_id, status in entries:
        if len(receipt_id) != RECEIPT_ID_LENGTH:
            raise ValueError("a receipt id is 32 bytes")
        parts += (receipt_id, bytes((AckStatus(status),)))
    return b"".join(parts)


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_ENTRIES:
        raise ValueError(f"a message holds 1 to {MAX_ENTRIES} entries")


def decode(payload: bytes) -> ReceiptsMessage | AckMessage:
    """Decode a ``pbts_receipt`` payload (the bytes after the extended id).

    Raises BadMessage("oversized") above MAX_PAYLOAD bytes or 32 entries, and
    BadMessage("malformed") for an empty payload, an unknown type, a count of 0 or a length
    that is not 2 + count * entry size. Entries are not validated here (:class:`Checker`).
    """
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage("oversized", f"{len(payload)} bytes, at most {MAX_PAYLOAD}")
    if len(payload) < 2:
        raise BadMessage("malformed", "shorter than 2 bytes")
    kind, count = payload[0], payload[1]
    sizes = {MSG_RECEIPTS: SIGNED_ENTRY, MSG_ACK: ACK_ENTRY}
    if kind not in sizes:
        raise BadMessage("malformed", f"unknown message type {kind}")
    if count > MAX_ENTRIES:
        raise BadMessage("oversized", f"{count} entries, at most {MAX_ENTRIES}")
    size = sizes[kind]
    if count == 0 or len(payload) != 2 + count * size:
        raise BadMessage("malformed", f"length {len(payload)} does not fit count {count}")
    view = memoryview(payload)
    if kind == MSG_RECEIPTS:
        return ReceiptsMessage(
            tuple(
                SignedReceipt(
                    bytes(view[p : p + RECEIPT_LENGTH]),
                    bytes(view[p + RECEIPT_LENGTH : p + SIGNED_ENTRY]),
                )
                for p in range(2, len(payload), SIGNED_ENTRY)
            )
        )
    acks = []
    for p in range(2, len(payload), ACK_ENTRY):
        status = payload[p + RECEIPT_ID_LENGTH]
        if status not in AckStatus._value2member_map_:
            raise BadMessage("malformed", f"unknown ack status {status}")
        acks.append((bytes(view[p : p + RECEIPT_ID_LENGTH]), AckStatus(status)))
    return AckMessage(tuple(acks))


# --- checking received receipts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The uploader's decision on one received receipt: ``status`` (the ACK's), ``reason``
    for a refusal ("" otherwise) and its strike ``kind`` (:data:`REFUSAL_KINDS`), the
    ``receipt_id`` and the parsed ``receipt`` (None if it did not parse)."""

    status: AckStatus
    reason: str
    kind: str
    receipt_id: bytes
    receipt: Receipt | None
    entry: SignedReceipt


REFUSAL_KINDS = {
    "malformed": "the receipt does not parse (v1, 181 bytes)",
    "wrong_realm": "another realm",
    "wrong_piece": "unknown torrent, piece index out of range, or not that piece's length",
    "not_mine": "names another uploader",
    "not_signer": "the downloader key is not the sending peer's",
    "stale": "time bucket too old or ahead",
    "unsolicited": "that piece was not sent to this peer",
    "forged": "the signature does not verify",
}
"""Strike kinds of a refused receipt and their reasons (docs/bep10.md)."""

PieceLength = Callable[[bytes, int], int | None]
"""(info_hash, piece index) -> that piece's length in bytes, or None for an unknown torrent or
an index out of range."""


@dataclass
class Checker:
    """Checks receipts sent to us (the uploader) by one peer, before they are kept.

    In order: the receipt parses (v1, 181 bytes); realm is ours; the torrent is one we serve and
    the length is that piece's (``piece_length``); uploader key is ours; downloader key is the
    sending peer's handshake key; the time bucket is at most :data:`PAST_BUCKETS` old and
    :data:`FUTURE_BUCKETS` ahead; we sent that whole piece to that key (``served``); and
    finally the signature (one randomized batch per message, bisected on failure:
    :func:`receipts.bls.find_invalid`). Duplicates (``known``) are answered DUPLICATE and not
    checked again.
    """

    realm: bytes
    my_pk: bytes
    piece_length: PieceLength
    served: Callable[[bytes, bytes, int], bool] = lambda pk, info_hash, index: True
    known: Callable[[bytes], bool] = lambda receipt_id: False
    clock: Callable[[], float] = time.time
    backend: str = "blst"

    def check(self, peer_pk: bytes, entries: Sequence[SignedReceipt]) -> list[Verdict]:
        """A verdict per entry, in order. Never raises for bad input."""
        verdicts: list[Verdict | None] = []
        pending: list[int] = []
        in_message: set[SignedReceipt] = set()
        for i, entry in enumerate(entries):
            verdict = self._fields(peer_pk, entry, in_message)
            verdicts.append(verdict)
            if verdict is None:
                pending.append(i)
                in_message.add(entry)
        if pending:
            items = [
                bls.SignedItem((peer_pk,), (entries[i].data,), entries[i].signature)
                for i in pending
            ]
            bad = {pending[j] for j in bls.find_invalid(_backend(self.backend), items)}
            for i in pending:
                receipt = Receipt.from_bytes(entries[i].data)
                if i in bad:
                    verdicts[i] = self._refuse(entries[i], receipt, "forged")
                else:
                    verdicts[i] = Verdict(
                        AckStatus.STORED, "", "", receipt.receipt_id, receipt, entries[i]
                    )
        return [v for v in verdicts if v is not None]

    def _fields(
        self, peer_pk: bytes, entry: SignedReceipt, in_message: set[SignedReceipt]
    ) -> Verdict | None:
        """A refusal or duplicate verdict, or None when only the signature is left to check.
        An entry repeated in one message is a duplicate (the same bytes with another signature
        are checked: at most one signature of given bytes is valid)."""
        try:
            receipt = Receipt.from_bytes(entry.data)
        except ValueError:
            return self._refuse(entry, None, "malformed")
        rid = receipt.receipt_id
        if entry in in_message or self.known(rid):
            return Verdict(AckStatus.DUPLICATE, "", "", rid, receipt, entry)
        now = time_bucket(self.clock())
        expected = self.piece_length(receipt.info_hash, receipt.piece_index)
        if receipt.realm != self.realm:
            kind = "wrong_realm"
        elif expected is None or receipt.piece_length != expected:
            kind = "wrong_piece"
        elif receipt.uploader_pk != self.my_pk:
            kind = "not_mine"
        elif receipt.downloader_pk != peer_pk:
            kind = "not_signer"
        elif not now - PAST_BUCKETS <= receipt.time_bucket <= now + FUTURE_BUCKETS:
            kind = "stale"
        elif not self.served(peer_pk, receipt.info_hash, receipt.piece_index):
            kind = "unsolicited"
        else:
            return None
        return self._refuse(entry, receipt, kind)

    @staticmethod
    def _refuse(entry: SignedReceipt, receipt: Receipt | None, kind: str) -> Verdict:
        rid = receipt.receipt_id if receipt is not None else hashlib.sha256(entry.data).digest()
        return Verdict(AckStatus.REFUSED, REFUSAL_KINDS[kind], kind, rid, receipt, entry)


def _backend(name: str = "blst") -> bls.Backend:
    """The fast backend when pyblst is installed, py_ecc otherwise (same answers)."""
    try:
        return bls.get_backend(name)
    except ImportError:
        return bls.get_backend("py_ecc")


# --- strikes -----------------------------------------------------------------------------------


@dataclass
class Strikes:
    """Misbehaviour of one connection: counts per kind and the total. ``add`` returns True
    once the total reaches :data:`MAX_STRIKES` (then disconnect)."""

    limit: int = MAX_STRIKES
    total: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> bool:
        """Count ``n`` strikes of ``kind``; True when the peer must be disconnected."""
        self.kinds[kind] = self.kinds.get(kind, 0) + n
        self.total += n
        return self.total >= self.limit
