"""The receipt: fixed-length bytes a downloader signs to say "this uploader sent me this piece".

Layout (version 1, big-endian, 181 bytes, no variable-length field, so no byte can move from one
field to another and give a new receipt with the same signature):

    offset  size  field
         0    16  DOMAIN  b"PBTS-RECEIPT-BLS"
        16     1  VERSION (u8) = 1
        17    32  realm id (this site only; :func:`realm_id`)
        49    20  info_hash (BitTorrent v1, SHA-1 of the info dict)
        69     4  piece index (u32)
        73     4  piece length in bytes (u32, >= 1; the last piece is shorter)
        77    48  uploader public key (compressed G1)
       125    48  downloader public key (compressed G1), the signer
       173     8  time bucket (u64) = unix seconds // TIME_BUCKET_SECONDS (60)

The receipt id is SHA-256 of exactly these bytes. See docs/receipts.md. No Django import.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

DOMAIN = b"PBTS-RECEIPT-BLS"
VERSION = 1
TIME_BUCKET_SECONDS = 60
REALM_LENGTH = 32
INFO_HASH_LENGTH = 20
PUBLIC_KEY_LENGTH = 48
U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF

# ">": big-endian, no padding. 16s domain, B version, 32s realm, 20s info_hash, I piece index,
# I piece length, 48s uploader, 48s downloader, Q time bucket.
_LAYOUT = struct.Struct(">16sB32s20sII48s48sQ")
RECEIPT_LENGTH = _LAYOUT.size
assert RECEIPT_LENGTH == 181

_REALM_TAG = b"PBTS-REALM-V1"


@dataclass(frozen=True, slots=True)
class Receipt:
    """One piece, sent by the holder of ``uploader_pk`` to the holder of ``downloader_pk``.

    realm: 32 bytes (:func:`realm_id`); info_hash: 20 bytes; piece_index: u32; piece_length:
    bytes in the piece, 1..2**32-1 (the credit); uploader_pk, downloader_pk: 48-byte compressed
    G1 public keys, different from each other; time_bucket: u64 (:func:`time_bucket`).
    """

    realm: bytes
    info_hash: bytes
    piece_index: int
    piece_length: int
    uploader_pk: bytes
    downloader_pk: bytes
    time_bucket: int

    def to_bytes(self) -> bytes:
        """The 181 signed bytes. Raises ValueError naming the first field of the wrong type,
        length or range."""
        self._check()
        return _LAYOUT.pack(
            DOMAIN,
            VERSION,
            self.realm,
            self.info_hash,
            self.piece_index,
            self.piece_length,
            self.uploader_pk,
            self.downloader_pk,
            self.time_bucket,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Parse the signed bytes. Raises ValueError with the reason: not bytes, wrong length,
        wrong domain tag, unknown version, or a field out of range."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError("a receipt is bytes")
        data = bytes(data)
        if len(data) != RECEIPT_LENGTH:
            raise ValueError(f"a receipt is {RECEIPT_LENGTH} bytes, got {len(data)}")
        if data[: len(DOMAIN)] != DOMAIN:
            raise ValueError("not a PBTS receipt (wrong domain tag)")
        if data[len(DOMAIN)] != VERSION:
            raise ValueError(f"unsupported receipt version {data[len(DOMAIN)]}")
        fields = _LAYOUT.unpack(data)[2:]
        receipt = cls(*fields)
        receipt._check()
        return receipt

    @property
    def receipt_id(self) -> bytes:
        """SHA-256 (32 bytes) of exactly the signed bytes. Raises ValueError like to_bytes."""
        return hashlib.sha256(self.to_bytes()).digest()

    def _check(self) -> None:
        """Raise ValueError for the first bad field."""
        _check_bytes("realm", self.realm, REALM_LENGTH)
        _check_bytes("info_hash", self.info_hash, INFO_HASH_LENGTH)
        _check_int("piece_index", self.piece_index, 0, U32_MAX)
        _check_int("piece_length", self.piece_length, 1, U32_MAX)
        _check_bytes("uploader_pk", self.uploader_pk, PUBLIC_KEY_LENGTH)
        _check_bytes("downloader_pk", self.downloader_pk, PUBLIC_KEY_LENGTH)
        _check_int("time_bucket", self.time_bucket, 0, U64_MAX)
        if self.uploader_pk == self.downloader_pk:
            raise ValueError("uploader_pk and downloader_pk are the same key")


def _check_bytes(name: str, value: object, length: int) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"{name} must be bytes")
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


def _check_int(name: str, value: object, minimum: int, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be in [{minimum}, {maximum}], got {value}")


def realm_id(site_name: str, site_secret_or_url: str) -> bytes:
    """The site's 32-byte realm id, so that a receipt is valid at one site only.

    realm = SHA-256(b"PBTS-REALM-V1" || u32(len(a)) || a || u32(len(b)) || b) with
    a = site_name and b = site_secret_or_url, both UTF-8, lengths big-endian: the length
    prefixes make the split between the two strings unambiguous. Use the site's canonical base
    URL (public: clients can compute it) or a secret (then the site publishes the realm hex).
    Raises ValueError for an empty string.
    """
    parts = []
    for name, value in (("site_name", site_name), ("site_secret_or_url", site_secret_or_url)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        encoded = value.encode("utf-8")
        parts.append(struct.pack(">I", len(encoded)) + encoded)
    return hashlib.sha256(_REALM_TAG + b"".join(parts)).digest()


def time_bucket(unix_seconds: float) -> int:
    """floor(unix_seconds / TIME_BUCKET_SECONDS) (60-second buckets). Raises ValueError for a
    negative or non-finite time, or one whose bucket does not fit in a u64."""
    if isinstance(unix_seconds, bool) or not isinstance(unix_seconds, int | float):
        raise ValueError("unix_seconds must be a number")
    if not math.isfinite(unix_seconds) or unix_seconds < 0:
        raise ValueError("unix_seconds must be finite and >= 0")
    bucket = int(unix_seconds // TIME_BUCKET_SECONDS)
    if bucket > U64_MAX:
        raise ValueError("time is beyond the last u64 bucket")
    return bucket
