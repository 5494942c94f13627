"""Test helpers: build .torrent bytes and upload them through ``torrent_upload``.

Import from other tests::

    from tracker.tests.torrents import make_torrent_bytes, upload_torrent
"""

from __future__ import annotations

import math
import os
from typing import Any

from fastbencode import bencode

from tracker.models import Category, Member, Torrent
from tracker.services.torrents import torrent_upload

ORIGINAL_ANNOUNCE = "http://tracker.example.invalid/announce"
"""The announce URL written into every torrent made here (the upload rewrite drops it)."""


def _to_bencodable(value: Any) -> Any:
    """Turn ``str`` keys and values into UTF-8 ``bytes``, recursively."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        return {_to_bencodable(k): _to_bencodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_bencodable(v) for v in value]
    return value


def _file_tree(files: list[tuple[str, int]]) -> dict[bytes, Any]:
    """A BEP 52 ``file tree`` with random 32-byte ``pieces root`` values."""
    tree: dict[bytes, Any] = {}
    for path, size in files:
        node = tree
        for part in path.split("/"):
            node = node.setdefault(part.encode("utf-8"), {})
        leaf: dict[bytes, Any] = {b"length": size}
        if size:
            leaf[b"pieces root"] = os.urandom(32)
        node[b""] = leaf
    return tree


def make_torrent_bytes(
    *,
    name: str = "file.bin",
    size: int = 100_000,
    piece_length: int = 16384,
    private: bool = False,
    files: list[tuple[str, int]] | None = None,
    hybrid: bool = False,
    v2_only: bool = False,
    extra_info: dict[str, Any] | None = None,
) -> bytes:
    """Build a bencoded .torrent (BEP 3) with random piece hashes; unique per call.

    Args:
        name: the ``info`` ``name`` (file name, or directory name when ``files`` is given).
        size: single-file length in bytes (ignored when ``files`` is given).
        piece_length: bytes per piece.
        private: set ``info`` ``private`` = 1 (BEP 27).
        files: ``(path with '/', size in bytes)`` pairs for a multi-file torrent.
        hybrid: add BEP 52 v2 keys (``meta version`` 2, ``file tree``, top-level
            ``piece layers``) next to the v1 ``pieces``; multi-file hybrids get BEP 47 padding
            files so that each file starts on a piece boundary, as BEP 52 requires.
        v2_only: a BEP 52 v2-only torrent (no ``pieces``), which uploads refuse.
        extra_info: more ``info`` keys (``str`` keys and values are encoded as UTF-8).

    The piece count always matches the size. Top-level ``announce`` is
    :data:`ORIGINAL_ANNOUNCE`, with ``announce-list``, ``nodes``, ``creation date`` and
    ``created by`` also present.
    """
    info: dict[bytes, Any] = {b"name": name.encode("utf-8"), b"piece length": piece_length}
    entries = files if files is not None else [(name, size)]
    if files is None:
        info[b"length"] = size
        total = size
    else:
        v1_files: list[dict[bytes, Any]] = []
        total = 0
        for index, (path, file_size) in enumerate(files):
            v1_files.append(
                {b"length": file_size, b"path": [p.encode("utf-8") for p in path.split("/")]}
            )
            total += file_size
            pad = -total % piece_length
            if hybrid and pad and index < len(files) - 1:
                v1_files.append(
                    {b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]}
                )
                total += pad
        info[b"files"] = v1_files
    if not v2_only:
        info[b"pieces"] = os.urandom(20 * math.ceil(total / piece_length))
    if hybrid or v2_only:
        info[b"meta version"] = 2
        info[b"file tree"] = _file_tree(entries)
    if private:
        info[b"private"] = 1
    if extra_info:
        info.update(_to_bencodable(extra_info))
    top: dict[bytes, Any] = {
        b"announce": ORIGINAL_ANNOUNCE.encode(),
        b"announce-list": [[ORIGINAL_ANNOUNCE.encode()], [b"udp://backup.example.invalid:6969"]],
        b"nodes": [[b"router.example.invalid", 6881]],
        b"creation date": 1_700_000_000,
        b"created by": b"pbts tests",
        b"info": info,
    }
    if hybrid or v2_only:
        top[b"piece layers"] = {os.urandom(32): os.urandom(32)}
    return bencode(top)


def upload_torrent(
    uploader: Member,
    *,
    category: Category | None = None,
    display_name: str = "",
    description: str = "",
    **kwargs: Any,
) -> Torrent:
    """Upload ``make_torrent_bytes(**kwargs)`` as ``uploader`` through ``torrent_upload``.

    ``name`` and the other keyword arguments of :func:`make_torrent_bytes` shape the file, so
    ``upload_torrent(m, name="x")`` stores a torrent named ``x``. ``display_name`` (the
    service's ``name``, ``''`` for the file's), ``description`` and ``category`` (``None``
    for the ``other`` category) go to the service. Returns the stored
    :class:`~tracker.models.Torrent`.
    """
    return torrent_upload(
        uploader=uploader,
        data=make_torrent_bytes(**kwargs),
        category=category,
        name=display_name,
        description=description,
    )
