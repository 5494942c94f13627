"""Pieces on disk: a torrent's byte stream laid over its files (BEP 3), SHA-1 piece checks and
recheck (resume from data already on disk).

The content lives under ``root``: ``root/name`` for a single-file torrent, ``root/name/...``
for a multi-file one. BEP 47 padding files are never written: they read as zeros. Reads and
writes use ``os.pread``/``os.pwrite`` on descriptors kept open, so they are safe from several
threads (the session hashes and writes completed pieces in a worker thread).
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from receipts.peer.metainfo import FileEntry, Metainfo

CHUNK = 1 << 20
"""Bytes read at a time by :meth:`Storage.recheck`."""


class StorageError(OSError):
    """The data cannot be read or written (missing file when seeding, disk full...)."""


class Storage:
    """The files of one torrent under ``root``. ``create``: make missing directories and files
    (sparse, at their full length) for a download; otherwise a missing file reads as absent
    pieces."""

    def __init__(self, meta: Metainfo, root: str | Path, *, create: bool) -> None:
        self.meta = meta
        self.root = Path(root)
        self._create = create
        self._real: list[FileEntry] = []
        self._layout: list[tuple[int, int, int | None]] = []  # (stream offset, length, real)
        for entry in meta.files:
            if entry.length and entry.padding:
                self._layout.append((entry.offset, entry.length, None))
            elif entry.length:
                self._layout.append((entry.offset, entry.length, len(self._real)))
                self._real.append(entry)
        self._starts = [start for start, _, _ in self._layout]
        self._fds: dict[int, int] = {}
        self._writable = create
        self._fresh: set[int] = set()  # real files created empty just now: nothing to check
        if create:
            for i, entry in enumerate(self._real):
                if self._prepare(entry):
                    self._fresh.add(i)
            for entry in meta.files:
                if not entry.padding and not entry.length:
                    self._prepare(entry)

    def path_of(self, entry: FileEntry) -> Path:
        """Where ``entry`` lives on disk."""
        if self.meta.multi_file:
            return self.root.joinpath(self.meta.name, *entry.path)
        return self.root / self.meta.name

    def _prepare(self, entry: FileEntry) -> bool:
        """Create ``entry`` (sparse, full length) if missing or short; True when it was empty
        (its pieces cannot be on disk: recheck skips them)."""
        path = self.path_of(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot create {path}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if size < entry.length:
                os.ftruncate(fd, entry.length)
        finally:
            os.close(fd)
        return size == 0

    def _fd(self, i: int) -> int | None:
        """The descriptor of real file ``i``; None when it does not exist (seeding)."""
        fd = self._fds.get(i)
        if fd is None:
            path = self.path_of(self._real[i])
            try:
                fd = os.open(path, os.O_RDWR if self._writable else os.O_RDONLY)
            except FileNotFoundError:
                if self._create:
                    raise StorageError(2, f"{path} disappeared") from None
                return None
            except OSError as exc:
                raise StorageError(exc.errno, f"cannot open {path}: {exc.strerror}") from None
            self._fds[i] = fd
        return fd

    def _spans(self, offset: int, length: int) -> Iterator[tuple[int | None, int, int, int]]:
        """(real file index, or None for padding, offset in that file, length, offset in the
        requested range) covering ``length`` bytes at stream ``offset`` (the files tile the
        stream: each starts where the previous one ends)."""
        end = offset + length
        pos = offset
        i = bisect.bisect_right(self._starts, pos) - 1
        while pos < end:
            start, size, real = self._layout[i]
            n = min(end, start + size) - pos
            yield real, pos - start, n, pos - offset
            pos += n
            i += 1

    def read(self, offset: int, length: int) -> bytes | None:
        """``length`` bytes at stream ``offset``; None when a file is missing or short."""
        out = bytearray(length)
        for i, at, n, into in self._spans(offset, length):
            if i is None:
                continue
            fd = self._fd(i)
            if fd is None:
                return None
            chunk = os.pread(fd, n, at)
            if len(chunk) != n:
                return None
            out[into : into + n] = chunk
        return bytes(out)

    def read_block(self, index: int, begin: int, length: int) -> bytes | None:
        """``length`` bytes at ``begin`` in piece ``index`` (None if not on disk)."""
        return self.read(index * self.meta.piece_length + begin, length)

    def write_piece(self, index: int, data: bytes) -> None:
        """Write a whole piece. Raises StorageError."""
        offset = index * self.meta.piece_length
        view = memoryview(data)
        for i, at, n, into in self._spans(offset, len(data)):
            if i is None:
                continue
            fd = self._fd(i)
            assert fd is not None
            try:
                written = os.pwrite(fd, view[into : into + n], at)
            except OSError as exc:
                raise StorageError(exc.errno, f"write failed: {exc.strerror}") from None
            if written != n:
                raise StorageError(5, "short write")

    def check(self, index: int, data: bytes) -> bool:
        """True when ``data`` is piece ``index`` (SHA-1, BEP 3)."""
        return (
            len(data) == self.meta.piece_size(index)
            and hashlib.sha1(data).digest() == self.meta.hashes[index]
        )

    def store_if_valid(self, index: int, data: bytes) -> bool:
        """Check piece ``index`` and write it when it passes; returns whether it passed."""
        if not self.check(index, data):
            return False
        self.write_piece(index, data)
        return True

    def recheck(self, progress: Callable[[int], None] | None = None) -> bytearray:
        """Hash every piece found on disk: one byte per piece, 1 when it matches. ``progress``
        is called with each piece index as it is checked."""
        have = bytearray(self.meta.piece_count)
        for index in range(self.meta.piece_count):
            size = self.meta.piece_size(index)
            if self._fresh and self._touches_fresh(index * self.meta.piece_length, size):
                if progress is not None:
                    progress(index)
                continue
            digest = hashlib.sha1()
            offset = index * self.meta.piece_length
            ok = True
            for start in range(0, size, CHUNK):
                chunk = self.read(offset + start, min(CHUNK, size - start))
                if chunk is None:
                    ok = False
                    break
                digest.update(chunk)
            have[index] = ok and digest.digest() == self.meta.hashes[index]
            if progress is not None:
                progress(index)
        self._fresh.clear()  # written to from now on
        return have

    def _touches_fresh(self, offset: int, length: int) -> bool:
        return any(i in self._fresh for i, _, _, _ in self._spans(offset, length))

    def sync(self) -> None:
        """fsync every open file."""
        for fd in self._fds.values():
            os.fsync(fd)

    def close(self) -> None:
        """Close every descriptor (idempotent)."""
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)
