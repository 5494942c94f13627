"""Metainfo (.torrent) files: BEP 3 (single and multi-file), BEP 12 (announce-list), BEP 27
(private), BEP 47 (padding files). v1 torrents and the v1 part of hybrids; v2-only torrents are
refused.

The info_hash is SHA-1 of the exact bytes of the ``info`` value as found in the file (not of a
re-encoding), so a non-canonical file still hashes as other clients hash it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastbencode

MAX_TORRENT_BYTES = 16 * 1024 * 1024
"""Largest .torrent file read (bytes)."""


class MetainfoError(ValueError):
    """A .torrent file this client cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the torrent: ``path`` components (below the torrent's directory for a
    multi-file torrent; the file name alone for a single file), ``length`` and ``offset`` in
    bytes in the torrent's byte stream, ``padding`` for a BEP 47 padding file (never on disk)."""

    path: tuple[str, ...]
    length: int
    offset: int
    padding: bool = False


@dataclass(frozen=True, slots=True)
class Metainfo:
    """A parsed .torrent.

    ``info_hash``: 20 bytes; ``name``: the suggested file or directory name; ``piece_length``:
    bytes per piece; ``hashes``: one 20-byte SHA-1 per piece; ``files``: in stream order;
    ``total_length``: bytes (padding included); ``private``: BEP 27; ``trackers``: tiers of
    announce URLs (BEP 12, or ``announce`` alone); ``multi_file``: content is a directory.
    """

    info_hash: bytes
    name: str
    piece_length: int
    hashes: tuple[bytes, ...]
    files: tuple[FileEntry, ...]
    total_length: int
    private: bool
    trackers: tuple[tuple[str, ...], ...]
    multi_file: bool

    @property
    def piece_count(self) -> int:
        """Number of pieces."""
        return len(self.hashes)

    def piece_size(self, index: int) -> int:
        """Bytes in piece ``index`` (the last piece is shorter). Raises IndexError out of
        range."""
        if not 0 <= index < len(self.hashes):
            raise IndexError(f"piece {index} out of range")
        if index == len(self.hashes) - 1:
            return self.total_length - self.piece_length * index
        return self.piece_length

    @property
    def data_length(self) -> int:
        """Bytes of real files (padding excluded)."""
        return sum(f.length for f in self.files if not f.padding)


def load(path: str | Path) -> Metainfo:
    """Read and parse a .torrent file. Raises MetainfoError (also for an unreadable file)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TORRENT_BYTES + 1)
    except OSError as exc:
        raise MetainfoError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_TORRENT_BYTES:
        raise MetainfoError("the .torrent file is too large")
    return parse(data)


def parse(data: bytes) -> Metainfo:
    """Parse .torrent bytes. Raises MetainfoError with the reason."""
    try:
        top = fastbencode.bdecode(data)
    except (ValueError, TypeError) as exc:
        raise MetainfoError(f"not bencoded: {exc}") from None
    if not isinstance(top, dict) or not isinstance(top.get(b"info"), dict):
        raise MetainfoError("no info dictionary")
    info = top[b"info"]
    info_hash = hashlib.sha1(info_bytes(data)).digest()
    pieces = info.get(b"pieces")
    if not isinstance(pieces, bytes):
        raise MetainfoError("no v1 pieces (v2-only torrents are not supported)")
    if len(pieces) % 20 or not pieces:
        raise MetainfoError("pieces is not a non-empty multiple of 20 bytes")
    piece_length = info.get(b"piece length")
    if not _is_int(piece_length) or piece_length <= 0:
        raise MetainfoError("piece length must be a positive integer")
    name = _component(info.get(b"name"), "name")
    files, multi = _files(info, name)
    total = sum(f.length for f in files)
    hashes = tuple(pieces[i : i + 20] for i in range(0, len(pieces), 20))
    if total == 0 or math.ceil(total / piece_length) != len(hashes):
        raise MetainfoError(f"{len(hashes)} piece hashes for {total} bytes")
    return Metainfo(
        info_hash=info_hash,
        name=name,
        piece_length=piece_length,
        hashes=hashes,
        files=files,
        total_length=total,
        private=info.get(b"private") == 1,
        trackers=_trackers(top),
        multi_file=multi,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _component(value: object, what: str) -> str:
    """One safe path component: UTF-8, not empty, not . or .., no separator or NUL."""
    if not isinstance(value, bytes):
        raise MetainfoError(f"{what} must be a string")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise MetainfoError(f"{what} is not UTF-8") from None
    if text in ("", ".", "..") or any(c in text for c in "/\\\0"):
        raise MetainfoError(f"unsafe {what}: {text!r}")
    return text


def _files(info: dict[bytes, Any], name: str) -> tuple[tuple[FileEntry, ...], bool]:
    """The file list and whether the torrent is multi-file."""
    if b"files" not in info:
        length = info.get(b"length")
        if not _is_int(length) or length < 0:
            raise MetainfoError("length must be a non-negative integer")
        return (FileEntry((name,), length, 0),), False
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries:
        raise MetainfoError("files must be a non-empty list")
    files, offset, seen = [], 0, set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise MetainfoError("a files entry is not a dictionary")
        length, path = entry.get(b"length"), entry.get(b"path")
        if not _is_int(length) or length < 0:
            raise MetainfoError("a file length must be a non-negative integer")
        if not isinstance(path, list) or not path:
            raise MetainfoError("a file path must be a non-empty list")
        parts = tuple(_component(p, "path component") for p in path)
        attr = entry.get(b"attr", b"")
        padding = isinstance(attr, bytes) and b"p" in attr
        if not padding:
            if parts in seen:
                raise MetainfoError(f"file {'/'.join(parts)} listed twice")
            seen.add(parts)
        files.append(FileEntry(parts, length, offset, padding))
        offset += length
    return tuple(files), True


def _trackers(top: dict[bytes, Any]) -> tuple[tuple[str, ...], ...]:
    """Announce URL tiers: ``announce-list`` (BEP 12) if usable, else ``announce``."""
    tiers = []
    for tier in top.get(b"announce-list") or []:
        if isinstance(tier, list):
            urls = tuple(u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes))
            if urls:
                tiers.append(urls)
    announce = top.get(b"announce")
    if not tiers and isinstance(announce, bytes):
        tiers.append((announce.decode("utf-8", "replace"),))
    return tuple(tiers)


# --- the raw bytes of the info dictionary -------------------------------------------------------


def info_bytes(data: bytes) -> bytes:
    """The exact bytes of the top-level ``info`` value. Raises MetainfoError if absent."""
    if data[:1] != b"d":
        raise MetainfoError("not a dictionary")
    pos = 1
    while pos < len(data) and data[pos : pos + 1] != b"e":
        key_end = _end(data, pos)
        key = data[data.index(b":", pos) + 1 : key_end]
        value_end = _end(data, key_end)
        if key == b"info":
            return data[key_end:value_end]
        pos = value_end
    raise MetainfoError("no info dictionary")


def _end(data: bytes, pos: int) -> int:
    """Index just past the bencoded value starting at ``pos``."""
    stack = 0
    while True:
        if pos >= len(data):
            raise MetainfoError("truncated bencoding")
        c = data[pos : pos + 1]
        if c in (b"d", b"l"):
            stack += 1
            pos += 1
        elif c == b"e" and stack > 0:
            stack -= 1
            pos += 1
        elif c == b"i":
            pos = data.index(b"e", pos) + 1
        elif c.isdigit():
            colon = data.index(b":", pos)
            pos = colon + 1 + int(data[pos:colon])
        else:
            raise MetainfoError("bad bencoding")
        if stack == 0:
            return pos
