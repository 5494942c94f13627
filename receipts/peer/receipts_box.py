"""The uploader's receipts on disk: an SQLite file (WAL, ``synchronous=FULL``: every commit is
fsynced), so a receipt acknowledged STORED to the downloader survives a crash or a power cut.

Each receipt is one row keyed by its id (SHA-256 of the 181 bytes), so it is kept once. Its
``state`` moves ``new`` -> ``sending`` (claimed by a report attempt, with a batch id) ->
``reported`` (the site answered: ``site_status`` is ``queued``/``verified``/``refused`` and
``reason`` the site's) or back to ``new`` (the attempt failed before the site answered, the
site refused it only because another receipt of its aggregate was refused, or refused it for
now: a member not yet seen in the swarm, a rate limit; such a retry waits, ``not_before``).
A ``sending`` row of a process that is gone (killed mid-report: the batch id starts with the
claimer's pid) is ``new`` again when a reporter starts (:meth:`ReceiptBox.release_orphans`),
and one older than ``stale_seconds`` is claimed again whoever holds it; the site then answers
"duplicate: already reported" for what it already had, and credits nothing twice.
Several processes may share one box: claims are transactions (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from receipts.format import Receipt

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    receipt_id    BLOB PRIMARY KEY,
    data          BLOB NOT NULL,
    signature     BLOB NOT NULL,
    realm         BLOB NOT NULL,
    info_hash     BLOB NOT NULL,
    uploader_pk   BLOB NOT NULL,
    downloader_pk BLOB NOT NULL,
    piece_length  INTEGER NOT NULL,
    received_at   REAL NOT NULL,
    state         TEXT NOT NULL DEFAULT 'new',
    batch         TEXT,
    claimed_at    REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    report_id     TEXT,
    site_status   TEXT,
    reason        TEXT,
    reported_at   REAL,
    not_before    REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS receipts_todo ON receipts (state, realm, uploader_pk);
"""
MAX_ATTEMPTS = 5
"""Answered reports a receipt may be part of before it is given up (state ``given_up``)."""
MAX_LATER = 12
"""Reports a receipt refused "for now" (not seen in the swarm yet, rate) may be part of."""


def create_private(path: Path) -> None:
    """Create the database file ``path`` (and its directory) with mode 0600 if it does not
    exist. An existing file is not opened: closing any descriptor of a file drops every POSIX
    lock this process holds on it, SQLite's included, and a connection of another process
    that then closes would take the WAL for unused and delete it under this process's open
    connections (their later commits lost)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _claimer_gone(batch: str) -> bool:
    """True when the process whose pid starts batch id ``batch`` no longer exists (ids of old
    boxes hold no pid: those wait for ``stale_seconds``)."""
    pid_text, _, rest = batch.partition("-")
    if not rest or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


@dataclass(frozen=True, slots=True)
class Stored:
    """One kept receipt as a report needs it."""

    receipt_id: bytes
    data: bytes
    signature: bytes
    info_hash: bytes
    downloader_pk: bytes
    piece_length: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Receipts claimed for one report attempt."""

    batch_id: str
    receipts: tuple[Stored, ...]


class ReceiptBox:
    """The box at ``path`` (created with its directory, mode 0600). Not thread-safe: use one
    instance per thread (``check_same_thread`` is on)."""

    def __init__(self, path: str | os.PathLike[str], *, stale_seconds: float = 600.0) -> None:
        self.path = Path(path)
        create_private(self.path)
        self.stale_seconds = stale_seconds
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(receipts)")}
        if "not_before" not in columns:  # a box made before retries were scheduled
            self._db.execute("ALTER TABLE receipts ADD COLUMN not_before REAL NOT NULL DEFAULT 0")

    def release_orphans(self) -> int:
        """Claims of processes that died mid-report (the reporter calls this when it starts):
        their receipts are ``new`` again. Returns how many."""
        rows = self._db.execute("SELECT DISTINCT batch FROM receipts WHERE state = 'sending'")
        before = self.counts()["new"]
        for (batch,) in rows.fetchall():
            if batch and _claimer_gone(batch):
                self.release(batch)
        return self.counts()["new"] - before

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    def add(self, entries: Iterable[tuple[Receipt, bytes, bytes]]) -> int:
        """Keep (receipt, its 181 bytes, signature) entries, each once; one fsynced commit.
        Returns how many were new."""
        now = time.time()
        rows = [
            (
                r.receipt_id,
                data,
                sig,
                r.realm,
                r.info_hash,
                r.uploader_pk,
                r.downloader_pk,
                r.piece_length,
                now,
            )
            for r, data, sig in entries
        ]
        if not rows:
            return 0
        before = self._db.total_changes
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO receipts (receipt_id, data, signature, realm, info_hash,"
                " uploader_pk, downloader_pk, piece_length, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return self._db.total_changes - before

    def contains(self, receipt_id: bytes) -> bool:
        """True when the receipt is kept (in any state)."""
        row = self._db.execute("SELECT 1 FROM receipts WHERE receipt_id = ?", (receipt_id,))
        return row.fetchone() is not None

    def claim(
        self, realm: bytes, uploader_pk: bytes, limit: int, *, only: Sequence[bytes] = ()
    ) -> Batch | None:
        """Mark up to ``limit`` unreported receipts of this realm and uploader ``sending``
        under a new batch id: oldest first, stale claims included, not those whose retry is
        scheduled later; or, with ``only`` (at most 500 ids), those of these ids still ``new``
        whatever their schedule. None when there are none."""
        now = time.time()
        batch_id = f"{os.getpid()}-{uuid.uuid4().hex}"  # the claimer's pid first
        select = (
            "SELECT receipt_id, data, signature, info_hash, downloader_pk, piece_length"
            " FROM receipts WHERE realm = ? AND uploader_pk = ?"
        )
        with self._transaction(immediate=True):
            if only:
                marks = ",".join("?" * len(only))
                rows = self._db.execute(
                    f"{select} AND state = 'new' AND receipt_id IN ({marks}) LIMIT ?",
                    (realm, uploader_pk, *only, limit),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"{select} AND ((state = 'new' AND not_before <= ?)"
                    " OR (state = 'sending' AND claimed_at < ?)) ORDER BY received_at LIMIT ?",
                    (realm, uploader_pk, now, now - self.stale_seconds, limit),
                ).fetchall()
            self._db.executemany(
                "UPDATE receipts SET state = 'sending', batch = ?, claimed_at = ?,"
                " attempts = attempts + 1 WHERE receipt_id = ?",
                [(batch_id, now, row[0]) for row in rows],
            )
        if not rows:
            return None
        return Batch(batch_id, tuple(Stored(*row) for row in rows))

    def release(self, batch_id: str) -> None:
        """The attempt failed before the site answered: its receipts are ``new`` again, and
        the attempt does not count (:data:`MAX_ATTEMPTS` and :data:`MAX_LATER` count answered
        reports: a site down for a while must not use them up)."""
        with self._transaction():
            self._db.execute(
                "UPDATE receipts SET state = 'new', batch = NULL, attempts = MAX(attempts - 1, 0)"
                " WHERE batch = ? AND state = 'sending'",
                (batch_id,),
            )

    def settle(
        self,
        batch_id: str,
        report_id: str,
        outcomes: Sequence[tuple[bytes, str, str]],
        *,
        retry: Iterable[bytes] = (),
        later: Iterable[bytes] = (),
    ) -> None:
        """The site answered the batch's report ``report_id``: each (receipt id, site status,
        reason) is ``reported``; ids in ``retry`` go back to ``new`` (or ``given_up`` after
        :data:`MAX_ATTEMPTS`); ids in ``later`` were refused for now (not seen in the swarm
        yet...: the site may take them later) and wait 30 s, 60 s, 120 s ... up to an hour
        before the next report (``given_up`` after :data:`MAX_LATER` reports)."""
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE receipts SET state = 'reported', report_id = ?, site_status = ?,"
                " reason = ?, reported_at = ? WHERE receipt_id = ? AND batch = ?",
                [
                    (report_id, status, reason, now, rid, batch_id)
                    for rid, status, reason in outcomes
                ],
            )
            self._db.executemany(
                "UPDATE receipts SET state = CASE WHEN attempts >= ? THEN 'given_up' ELSE 'new'"
                " END, batch = NULL WHERE receipt_id = ? AND batch = ?",
                [(MAX_ATTEMPTS, rid, batch_id) for rid in retry],
            )
            for rid in later:
                row = self._db.execute(
                    "SELECT attempts FROM receipts WHERE receipt_id = ? AND batch = ?",
                    (rid, batch_id),
                ).fetchone()
                if row is None:
                    continue
                delay = min(3600.0, 30.0 * 2 ** max(row[0] - 1, 0))
                self._db.execute(
                    "UPDATE receipts SET state = CASE WHEN attempts >= ? THEN 'given_up'"
                    " ELSE 'new' END, batch = NULL, not_before = ? WHERE receipt_id = ?",
                    (MAX_LATER, now + delay, rid),
                )

    def counts(self, realm: bytes | None = None) -> dict[str, int]:
        """Receipts per state (``new``, ``sending``, ``reported``, ``given_up``)."""
        where, args = ("WHERE realm = ?", (realm,)) if realm is not None else ("", ())
        rows = self._db.execute(
            f"SELECT state, COUNT(*) FROM receipts {where} GROUP BY state", args
        )
        out = {"new": 0, "sending": 0, "reported": 0, "given_up": 0}
        out.update(dict(rows.fetchall()))
        return out

    def pending(self, realm: bytes, uploader_pk: bytes) -> int:
        """Receipts of this realm and uploader due for a report (not reported yet, and no
        retry scheduled later)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM receipts WHERE realm = ? AND uploader_pk = ?"
            " AND ((state = 'new' AND not_before <= ?) OR state = 'sending')",
            (realm, uploader_pk, time.time()),
        ).fetchone()
        return int(row[0])

    def waiting_ids(self, realm: bytes, uploader_pk: bytes) -> list[bytes]:
        """Ids of this realm's and uploader's receipts not reported yet (``new``, whatever
        their schedule)."""
        rows = self._db.execute(
            "SELECT receipt_id FROM receipts WHERE realm = ? AND uploader_pk = ?"
            " AND state = 'new' ORDER BY received_at",
            (realm, uploader_pk),
        )
        return [row[0] for row in rows.fetchall()]

    def site_statuses(self) -> dict[str, int]:
        """Reported receipts per site status (``queued``, ``verified``, ``refused``)."""
        rows = self._db.execute(
            "SELECT site_status, COUNT(*) FROM receipts WHERE state = 'reported'"
            " GROUP BY site_status"
        )
        return {str(k): v for k, v in rows.fetchall()}

    class _Tx:
        def __init__(self, db: sqlite3.Connection, immediate: bool) -> None:
            self.db, self.immediate = db, immediate

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")

        def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _transaction(self, *, immediate: bool = True) -> ReceiptBox._Tx:
        return ReceiptBox._Tx(self._db, immediate)
