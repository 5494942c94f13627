"""Which piece to download next, from whom, and endgame (pure; no I/O).

Rules (docs/bep10.md, "Whole pieces from one peer"):

- every block of a piece is requested from one peer: a :class:`PieceDownload` belongs to one
  connection and holds the piece's own buffer, so a receipt always names the one peer that sent
  the whole piece;
- a new piece is chosen rarest first among the first :data:`SCAN` wanted pieces the peer has
  (so a seed's pieces come roughly in order, which keeps the disk sequential);
- endgame: when a peer has nothing new to give, it may download a piece that another peer is
  downloading, in full, into its own buffer; the first copy to complete and pass the SHA-1
  check is kept, the others are cancelled. A peer never downloads the same piece twice at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from receipts.peer.wire import BLOCK_SIZE

SCAN = 64
"""Wanted pieces examined per pick."""


@dataclass(eq=False)
class PieceDownload:
    """One piece being downloaded from one peer (``owner``) into ``buffer``: block offsets
    ``to_request`` (not asked yet) and ``inflight`` (asked, not received); ``received`` bytes;
    ``checking`` once complete and being hashed."""

    index: int
    size: int
    owner: object
    buffer: bytearray = field(init=False)
    to_request: deque[int] = field(init=False)
    inflight: set[int] = field(default_factory=set)
    received: int = 0
    checking: bool = False

    def __post_init__(self) -> None:
        self.buffer = bytearray(self.size)
        self.to_request = deque(range(0, self.size, BLOCK_SIZE))

    def block_length(self, begin: int) -> int:
        """Bytes in the block at ``begin`` (the piece's last block may be shorter)."""
        return min(BLOCK_SIZE, self.size - begin)

    @property
    def complete(self) -> bool:
        return self.received >= self.size and not self.inflight and not self.to_request

    def requeue(self) -> None:
        """The peer choked us: requests in flight are void (BEP 3); ask for them again."""
        self.to_request.extendleft(sorted(self.inflight, reverse=True))
        self.inflight.clear()


class Picker:
    """Piece selection for one torrent. ``have``: one byte per piece (shared with the session,
    updated by :meth:`completed`); ``piece_size(index)``: bytes in that piece."""

    def __init__(self, have: bytearray, piece_size: Callable[[int], int]) -> None:
        self.have = have
        self.piece_size = piece_size
        self.availability = [0] * len(have)
        self.downloads: dict[int, list[PieceDownload]] = {}
        self._wanted: dict[int, None] = {i: None for i, h in enumerate(have) if not h}

    @property
    def missing(self) -> int:
        """Pieces not verified yet."""
        return len(self.have) - sum(self.have)

    def peer_bits(self, bits: bytearray, delta: int) -> None:
        """A peer with pieces ``bits`` arrived (+1) or left (-1)."""
        for index, flag in enumerate(bits):
            if flag:
                self.availability[index] += delta

    def peer_has(self, index: int) -> None:
        """A peer announced piece ``index`` (``have``)."""
        self.availability[index] += 1

    def pick(self, bits: bytearray, owner: object) -> PieceDownload | None:
        """A new download for ``owner`` (whose pieces are ``bits``): a wanted piece (rarest of
        the first :data:`SCAN` it has), else an endgame duplicate; None when it has nothing
        for us."""
        best, best_count, seen = -1, 1 << 30, 0
        for index in self._wanted:
            if bits[index]:
                if self.availability[index] < best_count:
                    best, best_count = index, self.availability[index]
                seen += 1
                if seen >= SCAN:
                    break
        if best >= 0:
            del self._wanted[best]
            return self._start(best, owner)
        return self._endgame(bits, owner)

    def _start(self, index: int, owner: object) -> PieceDownload:
        download = PieceDownload(index, self.piece_size(index), owner)
        self.downloads.setdefault(index, []).append(download)
        return download

    def _endgame(self, bits: bytearray, owner: object) -> PieceDownload | None:
        """Duplicate the in-progress piece with the fewest copies (then most bytes left)."""
        best: tuple[int, int] | None = None
        best_index = -1
        for index, copies in self.downloads.items():
            if not bits[index] or any(d.owner is owner or d.checking for d in copies):
                continue
            left = min(d.size - d.received for d in copies)
            key = (len(copies), -left)
            if best is None or key < best:
                best, best_index = key, index
        return None if best_index < 0 else self._start(best_index, owner)

    def drop(self, download: PieceDownload) -> None:
        """Abandon a download (peer gone, choked for good, or the piece failed its check);
        the piece is wanted again when no other copy is in progress."""
        copies = self.downloads.get(download.index, [])
        if download in copies:
            copies.remove(download)
        if not copies:
            self.downloads.pop(download.index, None)
            if not self.have[download.index]:
                self._wanted[download.index] = None

    def completed(self, download: PieceDownload) -> list[PieceDownload]:
        """``download``'s piece passed its check: mark it had; return the other copies (to
        cancel)."""
        self.have[download.index] = 1
        self._wanted.pop(download.index, None)
        copies = self.downloads.pop(download.index, [])
        return [d for d in copies if d is not download]
