"""The rules a reported receipt must pass, as pure functions (no Django import).

``receipts.services.reports`` gathers what the database knows and calls these; each rule lives
here once and its refusal text is written here once. Times are Unix seconds, sizes bytes.
The holes the rules close are those of docs/origin.md section 6 (numbered there).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

# --- refusal reasons (the API returns them verbatim; tests match their beginnings) ---------

BAD_BASE64 = "{field}: not valid base64"
BAD_LENGTH = "{field}: must be {expected} bytes, got {got}"
UNDECODABLE = "receipt: {error}"
OTHER_REALM = "realm: the receipt is for another site (hole 10)"
NO_REPORTER_KEY = "uploader key: you have no active key; register one with POST /register"
NOT_REPORTER_KEY = "uploader key: not your active key; only the uploader reports a receipt (hole 5)"
UNKNOWN_DOWNLOADER = "downloader key: not the active key of a member (hole 5)"
SELF_SIGNED = "downloader key: your own key; a receipt must come from another member (hole 5)"
DOWNLOADER_NOT_IN_GOOD_STANDING = "downloader: the account is banned or inactive"
UNKNOWN_TORRENT = "torrent: no approved torrent with this info_hash on this site"
PIECE_INDEX = "piece index: {index} is past the torrent's last piece ({last})"
PIECE_LENGTH = (
    "piece length: {got} bytes, but piece {index} of this torrent has {expected} (hole 6)"
)
TOO_OLD = "time: older than the receipt window of {seconds} seconds"
IN_FUTURE = "time: more than {buckets} time bucket(s) in the future (hole 10)"
NOT_IN_SWARM = "downloader: not seen in this torrent's swarm around that time"
PIECE_CREDITED = (
    "duplicate piece: the downloader was already credited for piece {index} of this torrent"
    " (one credit per piece and downloader, whatever the time and the uploader)"
)
PIECE_IN_REPORT = "duplicate piece: {other} of this report names the same downloader and piece"
UPLOADER_NOT_IN_SWARM = "uploader: you were not seen in this torrent's swarm around that time"
DOWNLOADER_NOT_LEECHING = "downloader: not seen leeching (left > 0) this torrent around that time"
RATE = (
    "rate: more than {limit} bytes credited to the {role} in one {seconds}-second time bucket"
    " (PBTS_MAX_CREDIT_RATE, bytes per second)"
)
DUPLICATE_IN_REPORT = "duplicate: the same receipt as {other} in this report (hole 7)"
ALREADY_REPORTED = "duplicate: already reported (hole 7)"
LOST_RACE = "duplicate: already reported by a concurrent report (hole 7)"
GROUP_REFUSED = "aggregate: refused with its group because {other} was refused"
GROUP_SIGNATURE = "aggregate: its signature is unusable ({reason})"
BAD_SIGNATURE = "signature: does not verify (hole 8)"
GROUP_BAD_SIGNATURE = "aggregate: the aggregate signature does not verify (hole 8)"
GROUP_EMPTY = "aggregate: none of its receipts is queued"

PRIVATE_KEY_FIELDS = frozenset(
    {
        "private_key",
        "privatekey",
        "privkey",
        "secret_key",
        "secretkey",
        "sk",
        "secret",
        "seed",
        "ikm",
        "key_file",
    }
)
"""Request fields that would carry a private key; the server refuses any request holding one
(hole 2: the old server took private keys at /attest and /keygen and logged them)."""

NEVER_SEND_PRIVATE_KEY = (
    "Never send a private key to the server. Keys are made and used on your own machine "
    "(python -m receipts.client keygen / sign); this request was refused and nothing was "
    "stored or logged."
)


def _looks_private(name: object) -> bool:
    normal = str(name).lower().replace("-", "_")
    return normal in PRIVATE_KEY_FIELDS or normal.replace("_", "") in _SQUASHED


_SQUASHED = frozenset(n.replace("_", "") for n in PRIVATE_KEY_FIELDS)
_MAX_DEPTH = 4


def private_key_fields(data: object, *, prefix: str = "", depth: int = 0) -> list[str]:
    """Paths of the fields of a JSON document that look like a private key, sorted (e.g.
    ``["receipts[0].sk", "secretKey"]``); empty when there is none. Matching ignores case,
    ``-`` and ``_``; objects and lists are searched down to four levels."""
    found: list[str] = []
    if depth > _MAX_DEPTH:
        return found
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if _looks_private(key):
                found.append(path)
            found.extend(private_key_fields(value, prefix=path, depth=depth + 1))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(private_key_fields(value, prefix=f"{prefix}[{index}]", depth=depth + 1))
    return sorted(found)


def decode_b64(text: str, *, field: str, length: int | None = None) -> bytes:
    """Decode standard base64 (RFC 4648 section 4, padding required, no whitespace).

    Args:
        text: the encoded value as received.
        field: the name used in the refusal message.
        length: the exact decoded length required (bytes), or ``None``.

    Raises:
        ValueError: with the refusal reason (not base64, or the wrong length).
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError(BAD_BASE64.format(field=field)) from None
    if length is not None and len(raw) != length:
        raise ValueError(BAD_LENGTH.format(field=field, expected=length, got=len(raw)))
    return raw


def expected_piece_length(*, v1_size: int, piece_length: int, piece_count: int, index: int) -> int:
    """The length in bytes of piece ``index`` of a torrent (BEP 3): ``piece_length`` for every
    piece but the last, which holds what remains, ``v1_size - piece_length * (count - 1)``.

    ``v1_size`` is the v1 byte total the pieces cover, BEP 47 padding files included.

    Raises:
        ValueError: ``index`` is not a piece of the torrent.
    """
    if not 0 <= index < piece_count:
        raise ValueError(PIECE_INDEX.format(index=index, last=piece_count - 1))
    if index < piece_count - 1:
        return piece_length
    return v1_size - piece_length * (piece_count - 1)


def window_refusal(
    *, bucket: int, now: float, bucket_seconds: int, window_seconds: int, future_buckets: int
) -> str | None:
    """Check a receipt's time bucket against the acceptance window; ``None`` if it passes.

    A bucket ``b`` covers ``[b * bucket_seconds, (b + 1) * bucket_seconds)``. It passes when it
    ends after ``now - window_seconds`` (``PBTS_RECEIPT_WINDOW_SECONDS``) and is at most
    ``future_buckets`` (``PBTS_RECEIPT_FUTURE_BUCKETS``) buckets after the current one (clock
    skew; the old server allowed an hour, hole 10).
    """
    if (bucket + 1) * bucket_seconds <= now - window_seconds:
        return TOO_OLD.format(seconds=window_seconds)
    if bucket > int(now // bucket_seconds) + future_buckets:
        return IN_FUTURE.format(buckets=future_buckets)
    return None


def seen_around(
    *, bucket: int, bucket_seconds: int, spans: Iterable[tuple[float, float]], slack: float
) -> bool:
    """Whether a time bucket meets one of the spans a member was seen in a swarm.

    Args:
        bucket: the receipt's time bucket (see :func:`window_refusal`).
        spans: ``(first, last)`` seen times in seconds (first and last announce credited for
            that member and torrent).
        slack: seconds each span is widened by on both sides (``PBTS_RECEIPT_PRESENCE_SLACK_
            SECONDS``): a leecher's first announce carries no bytes and is recorded only with
            the next one, up to an announce interval later.
    """
    start = bucket * bucket_seconds
    end = start + bucket_seconds
    return any(first - slack < end and start <= last + slack for first, last in spans)


def bucket_credit_limit(*, rate: int, bucket_seconds: int) -> int:
    """Bytes one member may be credited in one time bucket: ``rate`` (bytes per second, the
    fastest transfer the site believes, ``PBTS_MAX_CREDIT_RATE``) x ``bucket_seconds``."""
    return max(0, rate) * bucket_seconds
