"""Parse, validate and rewrite .torrent files (metainfo, BEP 3); no Django import.

Bencode is read and written with ``fastbencode``. Its decoder is strict: it refuses unsorted or
duplicate dictionary keys, leading zeros, ``-0`` and trailing bytes. A file that decodes is
therefore already canonical, and re-encoding the decoded ``info`` dictionary gives back the
exact bytes it was read from. This is why ``info_hash = sha1(bencode(info))`` is the hash of
the bytes stored and served.

Why the info dictionary is validated here rather than with ``torf``: ``torf.Torrent.validate``
checks the v1 keys (BEP 3), but it also refuses torrents whose ``announce`` is not a URL, and we
drop that key anyway. It does not refuse negative or non-integer sizes, ``..`` path components
or piece lengths that are not powers of two, it knows nothing of BEP 52 (hybrid and v2-only
torrents) or BEP 47 padding files, its messages are not written for members, and it would decode
the file a second time. So the rules below are checked directly; the tests read our output
with ``torf`` as an independent second opinion.

Supported: v1 torrents (BEP 3) and hybrid v1+v2 torrents (BEP 52), which are tracked by
their v1 info_hash. BEP 52 ``piece layers`` and ``file tree`` are kept unchanged.
Not supported: v2-only torrents.

Huge torrents: before anything is decoded, :func:`check_structure` scans the raw bytes
without recursion and refuses nesting deeper than ``max_depth`` (a list nested 1,000,000 deep
is refused after reading ``max_depth`` + 1 bytes) and more bencoded values than
``TOKENS_PER_FILE`` per file allowed (libtorrent caps its decoder the same two ways), so that
neither the scan nor the decoder ever handles more than about a million values; ``max_files``
then caps the file list. Downloads
never decode the stored file: :func:`rewrite` drops every top-level key that sorts before or at
``comment`` (bencoded dictionaries are sorted), so :func:`encode_for_member` writes the
member's ``announce``, ``announce-list`` and ``comment`` and then copies the stored bytes after
their opening ``d`` as they are, ``info`` included: the info_hash cannot change and the cost is
one copy, whatever ``info`` holds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from fastbencode import bdecode, bencode

MIN_PIECE_LENGTH = 16 * 1024
"""Smallest piece length accepted, in bytes (16 KiB, the BEP 52 minimum and what clients make)."""

MAX_PIECE_LENGTH = 64 * 1024**2
"""Largest piece length accepted, in bytes (64 MiB): what clients make (mktorrent, libtorrent
and qBittorrent stop at 16-64 MiB). Larger pieces only serve to mint credit: one receipt
credits a whole piece (issue 13: a fake torrent of 1 GiB pieces)."""

MAX_PATH_DEPTH = 64
"""Most path components accepted for one file of a multi-file torrent."""

DEFAULT_MAX_FILES = 10_000
"""Most files (``files`` entries, BEP 47 padding files left out) :func:`parse` accepts unless
told otherwise; the site passes ``PBTS_MAX_TORRENT_FILES``."""

TOKENS_PER_FILE = 100
"""Bencoded values (dictionaries, lists, strings, integers) allowed per file of ``max_files``,
plus ``TOKENS_BASE``: a v1 file entry takes 7 plus one per path component, a hybrid torrent
about as many again (file tree, padding entry, piece layer). 10,000 files allow 1,010,000."""

TOKENS_BASE = 10_000
"""Bencoded values allowed besides those of the files (top level, ``info``, ``url-list``...)."""

DEFAULT_MAX_DEPTH = 100
"""Deepest nesting of lists and dictionaries :func:`parse` accepts unless told otherwise (the
top-level dictionary is level 1); the site passes ``PBTS_MAX_BENCODE_DEPTH``. 100 is
libtorrent's own decode limit; a v1 torrent needs 5 levels, a hybrid one 4 plus one per
directory level of its deepest file (``MAX_PATH_DEPTH`` is 64)."""

V2_ONLY_MESSAGE = "v2-only torrents (BEP 52) are not supported; upload a v1 or hybrid torrent."

MEMBER_KEYS_UP_TO = b"comment"
""":func:`rewrite` drops every top-level key that sorts before or at this one: ``announce``
(BEP 3), ``announce-list`` (BEP 12) and ``comment``, which every download writes anew, and
whatever else sorts there (``azureus_properties``...), so that the member's keys can be
written in front of the stored bytes."""

DROPPED_TOP_LEVEL_KEYS = (b"announce", b"announce-list", b"comment", b"nodes")
"""Known top-level keys removed by :func:`rewrite`: trackers (BEP 3, BEP 12), the comment
(each download has the torrent page's URL there) and DHT nodes (BEP 5)."""


class MetainfoError(ValueError):
    """The .torrent file is unusable; ``str(exc)`` is a message fit to show the member."""


class TooManyValues(MetainfoError):
    """:func:`check_structure` met more bencoded values than it was allowed."""


@dataclass(frozen=True)
class Metainfo:
    """A validated .torrent file.

    Attributes:
        data: the decoded top-level dictionary (``bytes`` keys, as ``fastbencode`` returns
            them). Treat it as read-only; :func:`rewrite` builds a new one.
        info_hash: 40 lower-case hex characters, the SHA-1 of the bencoded v1 ``info``
            dictionary (BEP 3), also for hybrid torrents.
        name: the ``info`` ``name``, decoded as UTF-8 with replacement characters.
        total_size: content size in bytes (sum of the file sizes, BEP 47 padding excluded).
        piece_length: bytes per piece.
        piece_count: number of v1 pieces (``len(pieces) // 20``).
        files: ``(path, size)`` pairs; ``path`` joins the BEP 3 path list with ``/`` (the
            ``name`` for a single-file torrent), ``size`` in bytes; padding files left out.
        is_hybrid: the torrent also carries BEP 52 v2 metadata.
        was_private: the ``info`` dictionary had ``private`` = 1 (BEP 27).
    """

    data: dict[bytes, Any] = field(repr=False, compare=False, hash=False)
    info_hash: str
    name: str
    total_size: int
    piece_length: int
    piece_count: int
    files: tuple[tuple[str, int], ...]
    is_hybrid: bool
    was_private: bool

    @property
    def info(self) -> dict[bytes, Any]:
        """The decoded ``info`` dictionary."""
        return self.data[b"info"]

    def to_bytes(self) -> bytes:
        """The bencoded .torrent file."""
        return bencode(self.data)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_component(value: Any, what: str) -> bytes:
    """A file or directory name: non-empty bytes, not ``.``/``..``, no ``/`` and no NUL."""
    if not isinstance(value, bytes) or not value:
        raise MetainfoError(f"The torrent has an empty or invalid {what}.")
    if value in (b".", b"..") or b"/" in value or b"\x00" in value:
        raise MetainfoError(f"The torrent has an unsafe {what}: {_text(value)[:80]!r}.")
    return value


def _is_padding(entry: dict[bytes, Any]) -> bool:
    attr = entry.get(b"attr")
    return isinstance(attr, bytes) and b"p" in attr


def _count_files(entries: list[Any]) -> int:
    """File entries that are not BEP 47 padding files (entries of any other type count)."""
    return sum(1 for entry in entries if not (isinstance(entry, dict) and _is_padding(entry)))


def _files(
    info: dict[bytes, Any], name: bytes, max_files: int
) -> tuple[list[tuple[str, int]], int]:
    """Return the listed files (padding excluded) and the v1 byte total (padding included)."""
    has_length = b"length" in info
    has_files = b"files" in info
    if has_length and has_files:
        raise MetainfoError("The torrent is both single-file and multi-file.")
    if has_length:
        length = info[b"length"]
        if not _is_int(length) or length < 0:
            raise MetainfoError("The torrent has an invalid file length.")
        return [(_text(name), length)], length
    if not has_files:
        raise MetainfoError("The torrent lists no files.")
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries:
        raise MetainfoError("The torrent lists no files.")
    if len(entries) > max_files and (count := _count_files(entries)) > max_files:
        raise MetainfoError(
            f"The torrent lists too many files ({count:,}; at most {max_files:,} are accepted)."
        )
    files: list[tuple[str, int]] = []
    seen: set[tuple[bytes, ...]] = set()
    total = 0
    for entry in entries:
        if not isinstance(entry, dict):
            raise MetainfoError("The torrent has an invalid file entry.")
        length = entry.get(b"length")
        if not _is_int(length) or length < 0:
            raise MetainfoError("The torrent has an invalid file length.")
        path = entry.get(b"path")
        if not isinstance(path, list) or not path or len(path) > MAX_PATH_DEPTH:
            raise MetainfoError("The torrent has an invalid file path.")
        parts = tuple(_check_component(part, "file path") for part in path)
        total += length
        if _is_padding(entry):
            continue
        if parts in seen:
            raise MetainfoError("The torrent lists the same file twice.")
        seen.add(parts)
        files.append(("/".join(_text(part) for part in parts), length))
    if not files:
        raise MetainfoError("The torrent lists no files.")
    return files, total


def _is_hybrid(info: dict[bytes, Any]) -> bool:
    """Classify by BEP 52 keys; raise for v2-only or an unknown ``meta version``."""
    version = info.get(b"meta version")
    if version is not None and version != 2:
        raise MetainfoError("The torrent has an unsupported meta version.")
    has_v2 = version == 2 or b"file tree" in info
    if has_v2 and b"pieces" not in info:
        raise MetainfoError(V2_ONLY_MESSAGE)
    if has_v2 and (version != 2 or not isinstance(info.get(b"file tree"), dict)):
        raise MetainfoError("The torrent has incomplete v2 (BEP 52) metadata.")
    return has_v2


def _build(data: dict[bytes, Any], *, max_files: int = DEFAULT_MAX_FILES) -> Metainfo:
    """Validate a decoded top-level dictionary and describe it."""
    info = data.get(b"info")
    if info is None:
        raise MetainfoError("The torrent has no info dictionary.")
    if not isinstance(info, dict):
        raise MetainfoError("The torrent's info is not a dictionary.")
    is_hybrid = _is_hybrid(info)

    name = _check_component(info.get(b"name"), "name")
    if not name.strip():
        raise MetainfoError("The torrent has an empty or invalid name.")

    piece_length = info.get(b"piece length")
    if not _is_int(piece_length) or piece_length <= 0:
        raise MetainfoError("The torrent's piece length must be a positive whole number.")
    if (
        piece_length < MIN_PIECE_LENGTH
        or piece_length > MAX_PIECE_LENGTH
        or piece_length & (piece_length - 1)
    ):
        raise MetainfoError(
            "The torrent's piece length must be a power of two from 16 KiB to 64 MiB."
        )

    pieces = info.get(b"pieces")
    if not isinstance(pieces, bytes) or len(pieces) % 20:
        raise MetainfoError("The torrent's piece hashes are invalid (not a multiple of 20 bytes).")

    files, v1_total = _files(info, name, max_files)
    if v1_total == 0:
        raise MetainfoError("The torrent contains no data.")
    piece_count = len(pieces) // 20
    if piece_count != math.ceil(v1_total / piece_length):
        raise MetainfoError(
            "The torrent's piece hashes do not match its size "
            f"({piece_count} pieces for {v1_total} bytes)."
        )

    try:
        info_bytes = bencode(info)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MetainfoError("The torrent's info dictionary cannot be encoded.") from exc
    return Metainfo(
        data=data,
        info_hash=hashlib.sha1(info_bytes).hexdigest(),
        name=_text(name),
        total_size=sum(size for _, size in files),
        piece_length=piece_length,
        piece_count=piece_count,
        files=tuple(files),
        is_hybrid=is_hybrid,
        was_private=info.get(b"private") == 1,
    )


def _decode(data: bytes) -> Any:
    try:
        return bdecode(bytes(data))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MetainfoError("This file is not a valid torrent (bad bencoding).") from exc


def check_structure(
    data: bytes | bytearray | memoryview, *, max_depth: int, max_tokens: int
) -> None:
    """Refuse bencoded ``data`` nested deeper than ``max_depth`` or holding more than
    ``max_tokens`` values, without decoding it.

    Reads the first bencoded value of ``data`` token by token without recursion (strings are
    skipped by their length) and stops at the first level past ``max_depth`` or the first
    value past ``max_tokens``: the time is bounded by ``max_tokens`` (about 0.3 us a value),
    and by ``max_depth`` for a deep attack, whatever the size of ``data``. Malformed input is
    left to the decoder, which refuses it with its own message.

    Args:
        data: the raw bencoded bytes.
        max_depth: the deepest nesting of lists and dictionaries accepted (the top level is 1).
        max_tokens: the most values (dictionaries, lists, strings, integers) accepted.

    Raises:
        MetainfoError: nested too deeply.
        TooManyValues: too many values.
    """
    view = bytes(data)
    end = len(view)
    find = view.find
    depth = 0
    pos = 0
    budget = max_tokens
    while pos < end:
        byte = view[pos]
        if byte == 0x65:  # "e"
            depth -= 1
            if depth <= 0:
                return
            pos += 1
            continue
        budget -= 1
        if budget < 0:
            raise TooManyValues(
                f"The torrent holds too many entries (more than {max_tokens:,} bencoded values)."
            )
        if byte == 0x64 or byte == 0x6C:  # "d", "l"
            depth += 1
            if depth > max_depth:
                raise MetainfoError(
                    f"The torrent is nested too deeply (more than {max_depth} levels of lists "
                    "and dictionaries)."
                )
            pos += 1
        elif byte == 0x69:  # "i": an integer up to its "e"
            pos = find(b"e", pos + 1) + 1
            if pos == 0 or depth == 0:
                return
        elif 0x30 <= byte <= 0x39:  # "<length>:<bytes>"
            colon = find(b":", pos, pos + 12)
            if colon < 0:
                return
            length = view[pos:colon]
            if not length.isdigit() or depth == 0:
                return
            pos = colon + 1 + int(length)
        else:
            return


def parse(
    data: bytes,
    *,
    max_bytes: int,
    max_files: int = DEFAULT_MAX_FILES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Metainfo:
    """Decode and validate a .torrent file (BEP 3; hybrid BEP 52 accepted).

    Args:
        data: the raw file, at most ``max_bytes`` bytes long.
        max_bytes: the largest file accepted, in bytes.
        max_files: the most files accepted (BEP 47 padding files not counted).
        max_depth: the deepest nesting of lists and dictionaries accepted.

    Checks: size; before decoding (:func:`check_structure`), the nesting depth and at most
    ``TOKENS_PER_FILE * max_files + TOKENS_BASE`` bencoded values; strict bencoding with no
    trailing bytes; a dictionary at the top with an ``info`` dictionary; a safe non-empty
    ``name``; ``piece length`` a power of two from 16 KiB to 1 GiB; ``pieces`` a multiple of
    20 bytes whose count is ``ceil(total / piece length)``; either ``length`` or at most
    ``max_files`` ``files`` (BEP 3), each file with a non-negative integer ``length`` and a
    non-empty ``path`` of non-empty components without ``/``, NUL, ``.`` or ``..``.

    Raises:
        MetainfoError: any check fails, including v2-only torrents (BEP 52).
    """
    if len(data) > max_bytes:
        raise MetainfoError(f"The torrent file is too large (more than {max_bytes} bytes).")
    max_tokens = TOKENS_PER_FILE * max_files + TOKENS_BASE
    try:
        check_structure(data, max_depth=max_depth, max_tokens=max_tokens)
    except TooManyValues as exc:
        raise MetainfoError(
            f"The torrent holds too many entries (more than {max_tokens:,} bencoded values, "
            f"far more than {max_files:,} files need): it lists too many files (at most "
            f"{max_files:,} are accepted) or carries data a torrent does not need."
        ) from exc
    decoded = _decode(data)
    if not isinstance(decoded, dict):
        raise MetainfoError("This file is not a torrent (no dictionary at the top level).")
    return _build(decoded, max_files=max_files)


def rewrite(meta: Metainfo, *, source: str) -> Metainfo:
    """Make the torrent ours: private (BEP 27), tagged with ``source``, without trackers.

    Sets ``info`` ``private`` = 1 and ``info`` ``source`` = ``source`` (UTF-8); drops the
    top-level ``nodes`` (BEP 5) and every top-level key that sorts before or at ``comment``
    (:data:`MEMBER_KEYS_UP_TO`: ``announce``, ``announce-list`` (BEP 12), ``comment``...),
    which downloads write for each member; keeps every other key (``creation date``,
    ``created by``, ``url-list``, BEP 52 ``piece layers``). ``info_hash`` is recomputed;
    ``meta`` is left unchanged. The file count was checked by :func:`parse`.

    Raises:
        MetainfoError: the result does not validate (cannot happen for a parsed ``meta``).
    """
    info = dict(meta.info)
    info[b"private"] = 1
    info[b"source"] = source.encode("utf-8")
    data = {
        k: v
        for k, v in meta.data.items()
        if k > MEMBER_KEYS_UP_TO and k not in DROPPED_TOP_LEVEL_KEYS
    }
    data[b"info"] = info
    return _build(data, max_files=len(meta.files))


def _bstring(value: bytes) -> bytes:
    return b"%d:%s" % (len(value), value)


def _spliceable(stored: bytes | bytearray | memoryview) -> bool:
    """Whether ``stored`` is a dictionary whose first key sorts after ``comment`` (as
    :func:`rewrite` writes it), read from its first bytes only."""
    head = bytes(stored[:24])
    if head[:1] != b"d":
        return False
    colon = head.find(b":", 1)
    if colon < 2 or not head[1:colon].isdigit():
        return False
    length = int(head[1:colon])
    if length <= 0 or colon + 1 + length > len(stored):
        return False
    return bytes(stored[colon + 1 : colon + 1 + length]) > MEMBER_KEYS_UP_TO


def encode_for_member(
    meta_or_bytes: Metainfo | bytes | bytearray | memoryview,
    *,
    announce_url: str,
    comment: str,
    other_urls: tuple[str, ...] = (),
) -> bytes:
    """Return the .torrent a member downloads, announcing to their personal URL.

    Args:
        meta_or_bytes: a :class:`Metainfo`, or the stored .torrent bytes (a ``memoryview`` as
            a database ``BinaryField`` returns it is accepted).
        announce_url: the member's announce URL (with their passkey).
        comment: text for the ``comment`` key, normally the torrent's page URL.
        other_urls: more URLs of the same tracker (the UDP one, BEP 15), listed beside it.

    Sets ``announce`` (BEP 3) to ``announce_url``, ``announce-list`` to one tier (BEP 12)
    ``[[announce_url, *other_urls]]`` (one tracker reached two ways: a client uses one and
    moves to the next of the tier only if it fails) and ``comment``. The ``info`` dictionary
    is not touched, so the info_hash is unchanged.

    Bytes written by :func:`rewrite` (no top-level key up to ``comment``) are spliced, never
    decoded: ``d``, the three member keys, then the stored bytes after their ``d``, copied;
    the time is one copy of the file, whatever ``info`` holds. Other bytes and a
    :class:`Metainfo` are decoded, updated and re-encoded.

    Raises:
        MetainfoError: bytes that are not spliced and are not a bencoded dictionary with an
            ``info`` dictionary.
    """
    url = announce_url.encode("utf-8")
    tier = [url, *(other.encode("utf-8") for other in other_urls if other)]
    if not isinstance(meta_or_bytes, Metainfo) and _spliceable(meta_or_bytes):
        return b"".join(
            (
                b"d8:announce",
                _bstring(url),
                b"13:announce-list",
                bencode([tier]),
                b"7:comment",
                _bstring(comment.encode("utf-8")),
                memoryview(meta_or_bytes)[1:],
            )
        )
    if isinstance(meta_or_bytes, Metainfo):
        data = dict(meta_or_bytes.data)
    else:
        data = _decode(meta_or_bytes)
        if not isinstance(data, dict) or not isinstance(data.get(b"info"), dict):
            raise MetainfoError("The stored torrent is not valid.")
    data[b"announce"] = url
    data[b"announce-list"] = [tier]
    data[b"comment"] = comment.encode("utf-8")
    return bencode(data)


def info_hash_of(data: bytes | bytearray | memoryview) -> str:
    """Return the 40-hex v1 info_hash (SHA-1 of the bencoded ``info``, BEP 3) of .torrent bytes.

    Raises:
        MetainfoError: the bytes are not a bencoded dictionary with an ``info`` dictionary.
    """
    decoded = _decode(data)
    if not isinstance(decoded, dict) or not isinstance(decoded.get(b"info"), dict):
        raise MetainfoError("This file is not a torrent (no info dictionary).")
    return hashlib.sha1(bencode(decoded[b"info"])).hexdigest()


__all__ = [
    "Metainfo",
    "MetainfoError",
    "TooManyValues",
    "check_structure",
    "encode_for_member",
    "info_hash_of",
    "parse",
    "rewrite",
]
