"""What the receipts exchange must remember across a crash (SIGKILL, a reboot...), beside the
data and the receipts box, so that killing a peer mid-transfer loses no receipt:

- ``pending`` (downloader): the receipt of each piece that came whole from a PBTS peer,
  recorded *before* the piece is written and deleted once that peer acknowledges it. A
  restarted peer finds the piece on disk (recheck) and will not download it again, so it sends
  those same bytes again, signed, to their uploader when it meets that key again (the uploader
  answers DUPLICATE for one it had kept already). Without it, the pieces written in the last
  seconds before a kill would never get a receipt: the uploader would not be credited for them.
- ``served`` (uploader): which pieces went whole to which key, so that a restarted uploader
  accepts the receipts of pieces its previous run sent (check 7, docs/bep10.md) instead of
  refusing them as unsolicited and striking the honest downloader that sends them again.

An SQLite file beside the receipts box (:func:`journal_path`), with ``synchronous=OFF``: a
write is in the operating system before the piece is written (or the receipt can be checked),
which is what a killed process needs, without an fsync per piece (the data itself is not
fsynced per piece either); a file of its own, so that the box's fsynced commits and checkpoints
stay as they are. Entries older than :data:`KEEP_SECONDS` are dropped: an uploader refuses
receipts more than an hour old (check 6). Used from the event loop's thread.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from receipts.peer.receipts_box import create_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    receipt_id    BLOB PRIMARY KEY,
    info_hash     BLOB NOT NULL,
    downloader_pk BLOB NOT NULL,
    uploader_pk   BLOB NOT NULL,
    piece_index   INTEGER NOT NULL,
    data          BLOB NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_torrent ON pending (info_hash, downloader_pk);
CREATE TABLE IF NOT EXISTS served (
    info_hash     BLOB NOT NULL,
    uploader_pk   BLOB NOT NULL,
    downloader_pk BLOB NOT NULL,
    piece_index   INTEGER NOT NULL,
    served_at     REAL NOT NULL,
    PRIMARY KEY (info_hash, uploader_pk, downloader_pk, piece_index)
);
"""
KEEP_SECONDS = 2 * 3600.0


def journal_path(box_path: Path) -> Path:
    """The journal beside the box ``box.sqlite3``: ``box.journal.sqlite3``."""
    return box_path.with_name(f"{box_path.stem}.journal{box_path.suffix}")


@dataclass(frozen=True, slots=True)
class Pending:
    """A receipt (its 181 bytes) not acknowledged yet by ``uploader_pk``."""

    receipt_id: bytes
    uploader_pk: bytes
    piece_index: int
    data: bytes


class Journal:
    """The journal kept in the SQLite file at ``path`` (:func:`journal_path`)."""

    def __init__(self, path: str | os.PathLike[str], *, clock=time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        create_private(self.path)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(SCHEMA)
        old = self.clock() - KEEP_SECONDS
        self._db.execute("DELETE FROM pending WHERE created_at < ?", (old,))
        self._db.execute("DELETE FROM served WHERE served_at < ?", (old,))

    def close(self) -> None:
        self._db.close()

    # --- downloader -----------------------------------------------------------------------------

    def add_pending(self, info_hash: bytes, downloader_pk: bytes, entry: Pending) -> None:
        """Remember ``entry``, a receipt of torrent ``info_hash``, until it is settled."""
        self._db.execute(
            "INSERT OR REPLACE INTO pending (receipt_id, info_hash, downloader_pk, uploader_pk,"
            " piece_index, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.receipt_id,
                info_hash,
                downloader_pk,
                entry.uploader_pk,
                entry.piece_index,
                entry.data,
                self.clock(),
            ),
        )

    def settle(self, receipt_ids: Iterable[bytes]) -> None:
        """The receipts were acknowledged (or will never be sent): forget them."""
        ids = [(rid,) for rid in receipt_ids]
        if ids:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM pending WHERE receipt_id = ?", ids)
            self._db.execute("COMMIT")

    def pending(self, info_hash: bytes, downloader_pk: bytes) -> list[Pending]:
        """This torrent's receipts signed by ``downloader_pk`` not acknowledged yet."""
        rows = self._db.execute(
            "SELECT receipt_id, uploader_pk, piece_index, data FROM pending"
            " WHERE info_hash = ? AND downloader_pk = ? ORDER BY created_at",
            (info_hash, downloader_pk),
        )
        return [Pending(*row) for row in rows.fetchall()]

    # --- uploader -------------------------------------------------------------------------------

    def add_served(
        self, info_hash: bytes, uploader_pk: bytes, downloader_pk: bytes, piece_index: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO served (info_hash, uploader_pk, downloader_pk, piece_index,"
            " served_at) VALUES (?, ?, ?, ?, ?)",
            (info_hash, uploader_pk, downloader_pk, piece_index, self.clock()),
        )

    def served(self, info_hash: bytes, uploader_pk: bytes) -> set[tuple[bytes, int]]:
        """(downloader key, piece index) of this torrent's pieces sent whole under our key."""
        rows = self._db.execute(
            "SELECT downloader_pk, piece_index FROM served WHERE info_hash = ? AND uploader_pk = ?",
            (info_hash, uploader_pk),
        )
        return {(pk, index) for pk, index in rows.fetchall()}
