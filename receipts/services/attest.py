"""Attest service: the canonical bytes of a receipt for given fields, for a client to sign.

The old server signed receipts with a private key the client sent (docs/origin.md section 6,
hole 2). Here the server only encodes: it never takes, makes or sees a private key (the
API refuses a request carrying one; ``receipts.rules.private_key_fields``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.errors import InvalidInput
from receipts import format as receipt_format
from receipts import rules
from receipts.selectors import torrent_v1_size
from receipts.site import site_realm
from tracker.models import Torrent, TorrentStatus


@dataclass(frozen=True)
class Attestation:
    """Receipt bytes (``receipts.format``), their 32-byte id, this site's 32-byte realm id,
    the piece length in bytes and the time bucket used."""

    receipt: bytes
    receipt_id: bytes
    realm_id: bytes
    piece_length: int
    time_bucket: int


def receipt_attest(
    *,
    info_hash: str,
    piece_index: int,
    uploader_pk: bytes,
    downloader_pk: bytes,
    piece_length: int | None = None,
    unix_time: int | None = None,
) -> Attestation:
    """Build the receipt a downloader signs for one piece of a torrent of this site.

    Args:
        info_hash: the torrent's v1 info_hash, 40 hex digits.
        piece_index: the piece (0-based).
        uploader_pk, downloader_pk: 48-byte public keys.
        piece_length: the piece's length in bytes; filled in when ``None``, checked otherwise.
        unix_time: when the piece was received (seconds); now when ``None``.

    Raises:
        InvalidInput: unknown torrent (field ``info_hash``), piece index out of range
            (``piece_index``), wrong piece length (``piece_length``), or the same key as
            uploader and downloader (``downloader_pk``).
    """
    torrent = (
        Torrent.objects.filter(info_hash=info_hash.lower(), status=TorrentStatus.APPROVED)
        .only("id", "info_hash", "piece_length", "piece_count")
        .first()
    )
    if torrent is None:
        raise InvalidInput(rules.UNKNOWN_TORRENT, field="info_hash")
    try:
        expected = rules.expected_piece_length(
            v1_size=torrent_v1_size(torrent),
            piece_length=torrent.piece_length,
            piece_count=torrent.piece_count,
            index=piece_index,
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="piece_index") from None
    if piece_length is not None and piece_length != expected:
        raise InvalidInput(
            rules.PIECE_LENGTH.format(got=piece_length, index=piece_index, expected=expected),
            field="piece_length",
        )
    bucket = receipt_format.time_bucket(time.time() if unix_time is None else unix_time)
    receipt = receipt_format.Receipt(
        realm=site_realm(),
        info_hash=bytes.fromhex(torrent.info_hash),
        piece_index=piece_index,
        piece_length=expected,
        uploader_pk=bytes(uploader_pk),
        downloader_pk=bytes(downloader_pk),
        time_bucket=bucket,
    )
    try:
        data = receipt.to_bytes()
    except ValueError as exc:  # the same key on both sides
        raise InvalidInput(f"{exc}.", field="downloader_pk") from None
    return Attestation(
        receipt=data,
        receipt_id=receipt.receipt_id,
        realm_id=receipt.realm,
        piece_length=expected,
        time_bucket=bucket,
    )
