"""What lets a killed PBTS peer lose no receipt (the end-to-end kills are in
``test_peer_faults.py``): the journal of receipts not yet acknowledged and of pieces served,
an exchange that journals a receipt before its piece is written and sends it again after a
restart, a restarted seeder that accepts receipts for pieces its previous run served; and the
receipts box: its WAL is never deleted under an open connection, a claim of a dead process is
released at once, and failed report attempts do not use up a receipt's attempts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from receipts import bls
from receipts.client.keyfile import KeyPair
from receipts.format import Receipt, realm_id
from receipts.peer import extension as ext
from receipts.peer import metainfo
from receipts.peer.exchange import Exchange
from receipts.peer.journal import KEEP_SECONDS, Journal, Pending, journal_path
from receipts.peer.receipts_box import MAX_ATTEMPTS, ReceiptBox
from receipts.peer.session import Session
from receipts.peer.storage import Storage
from receipts.tests.peer_helpers import BOX_REALM, BOX_UPLOADER, box_entry, make_torrent

REALM = realm_id("PBTS test", "https://tracker.example.org")
PIECE = 32 * 1024


def keypair(seed: int) -> KeyPair:
    sk, pk = bls.keygen(bytes([seed]) * 32)
    return KeyPair(sk=sk, pk=pk)


def count_elsewhere(path: Path) -> int:
    """Receipts in the box at ``path`` as another process sees them (its connection closed
    at the end, as a reporter or a test reading the box does)."""
    code = (
        "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
        " print(db.execute('SELECT COUNT(*) FROM receipts').fetchone()[0]); db.close()"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    return int(out.stdout)


def test_the_wal_survives_a_second_box_and_another_process(tmp_path: Path):
    """A second box (or journal) on the same file in one process (the reporter's, opened after
    the exchange's) once dropped the process's SQLite locks, so another process closing its
    connection deleted the WAL: later commits were invisible, and lost at a crash."""
    path = tmp_path / "box.sqlite3"
    first = ReceiptBox(path)
    first.add([box_entry(0)])
    second, journal = ReceiptBox(path), Journal(path)
    assert count_elsewhere(path) == 1
    first.add([box_entry(1)])
    assert path.with_name("box.sqlite3-wal").exists()
    assert count_elsewhere(path) == 2
    for db in (first, second, journal):
        db.close()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_dead_claimer_is_released_and_failed_attempts_do_not_count(tmp_path: Path):
    path = tmp_path / "box.sqlite3"
    script = (
        "import sys, os; from receipts.peer.receipts_box import ReceiptBox;"
        " from receipts.tests.peer_helpers import BOX_REALM, BOX_UPLOADER, box_entry;"
        " box = ReceiptBox(sys.argv[1]); box.add(box_entry(i) for i in range(4));"
        " assert box.claim(BOX_REALM, BOX_UPLOADER[1], 3); os._exit(0)"  # dies mid-report
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env, timeout=60)
    box = ReceiptBox(path)  # a new process (its reporter): the dead one's claim is new again
    assert box.counts()["sending"] == 3
    assert box.release_orphans() == 3 and box.counts()["new"] == 4
    for _ in range(MAX_ATTEMPTS + 3):  # the site is down: nothing answered
        batch = box.claim(BOX_REALM, BOX_UPLOADER[1], 10)
        assert batch is not None and len(batch.receipts) == 4
        box.release(batch.batch_id)
    batch = box.claim(BOX_REALM, BOX_UPLOADER[1], 10)
    ids = [s.receipt_id for s in batch.receipts]
    # Answered at last: refused only with its group, a receipt is reported again, not given up.
    box.settle(batch.batch_id, "1", [(ids[0], "refused", "duplicate")], retry=ids[1:])
    assert box.counts() == {"new": 3, "sending": 0, "reported": 1, "given_up": 0}
    box.close()


def test_journal_pending_served_and_pruning(tmp_path: Path):
    now = [1_000_000.0]
    journal = Journal(tmp_path / "box.sqlite3", clock=lambda: now[0])
    ih, me, up = b"\x01" * 20, b"\x02" * 48, b"\x03" * 48
    entries = [Pending(bytes([i]) * 32, up, i, b"data%d" % i) for i in range(3)]
    for entry in entries:
        journal.add_pending(ih, me, entry)
    journal.add_served(ih, me, up, 7)
    assert journal.pending(ih, me) == entries and journal.pending(ih, up) == []
    journal.settle([entries[1].receipt_id])
    assert journal.pending(ih, me) == [entries[0], entries[2]]
    assert journal.served(ih, me) == {(up, 7)} and journal.served(ih, up) == set()
    journal.close()
    now[0] += KEEP_SECONDS + 1  # older than any uploader accepts: forgotten
    journal = Journal(tmp_path / "box.sqlite3", clock=lambda: now[0])
    assert journal.pending(ih, me) == [] and journal.served(ih, me) == set()
    journal.close()


def test_receipts_of_a_killed_run_are_sent_again_and_a_restarted_seeder_takes_them(
    tmp_path: Path,
):
    """In one process: a leecher gets every piece from a seeder, but the ACKs and the sending
    of the last receipts are cut off as a kill would (the exchanges are dropped, not stopped);
    a new leecher exchange on the same journal finds the pieces on disk and sends their
    receipts again, and a new seeder exchange on the same box takes them (its journal says
    which pieces went whole to that key)."""
    data = random.Random(5).randbytes(12 * PIECE + 100)
    meta = metainfo.parse(make_torrent([("f", data)], name="f", single=True, piece_length=PIECE))
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "f").write_bytes(data)
    up_key, down_key = keypair(11), keypair(12)
    seed_box_path, leech_box_path = tmp_path / "seed.box", tmp_path / "leech.box"

    def seeder() -> tuple[Session, ReceiptBox, Journal, Storage]:
        storage = Storage(meta, tmp_path / "seed", create=False)
        box, journal = ReceiptBox(seed_box_path), Journal(journal_path(seed_box_path))
        exchange = Exchange(meta, up_key, REALM, box, journal=journal)
        session = Session(meta, storage, storage.recheck(), exchange=exchange, bind="127.0.0.1")
        return session, box, journal, storage

    def leecher() -> tuple[Session, Journal, Storage]:
        storage = Storage(meta, tmp_path / "leech", create=True)
        have = storage.recheck()
        journal = Journal(journal_path(leech_box_path))
        exchange = Exchange(meta, down_key, REALM, None, journal=journal)
        exchange.resume(have)
        session = Session(meta, storage, have, exchange=exchange, bind="127.0.0.1")
        return session, journal, storage

    async def first_run() -> None:
        seed, seed_box, seed_journal, seed_storage = seeder()
        leech, leech_journal, leech_storage = leecher()
        # The kill: no receipt leaves the leecher, whatever it signs.
        leech.exchange.flush = lambda peer, force=True: None
        await seed.start()
        await leech.start()
        leech.add_peers([("127.0.0.1", seed.port)])
        await asyncio.wait_for(leech.completed.wait(), 60)
        await leech.exchange.drain()
        for session in (leech, seed):  # dropped, not stopped: nothing more is sent
            for conn in list(session.conns):
                conn.transport.abort()
            session._server.close()
            for task in session._tasks:
                task.cancel()
        await asyncio.sleep(0.1)
        assert leech.exchange.counters.signed == meta.piece_count
        assert seed.exchange.counters.received == 0
        for closable in (seed_box, seed_journal, seed_storage, leech_journal, leech_storage):
            closable.close()

    async def second_run() -> None:
        seed, seed_box, seed_journal, seed_storage = seeder()
        leech, leech_journal, leech_storage = leecher()
        assert all(leech.have) and leech.exchange.counters.resumed == meta.piece_count
        await seed.start()
        await leech.start()
        leech.add_peers([("127.0.0.1", seed.port)])
        for _ in range(200):
            if seed.exchange.counters.received == meta.piece_count:
                break
            await asyncio.sleep(0.05)
        await leech.stop()
        await seed.stop()
        assert seed.exchange.counters.received == meta.piece_count
        assert seed.exchange.counters.strikes == {}
        assert leech.exchange.counters.acked == meta.piece_count
        assert leech_journal.pending(meta.info_hash, down_key.pk) == []  # all settled
        for closable in (seed_box, seed_journal, seed_storage, leech_journal, leech_storage):
            closable.close()

    asyncio.run(first_run())
    with contextlib.closing(sqlite3.connect(journal_path(leech_box_path))) as db:
        assert db.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == meta.piece_count
    asyncio.run(second_run())
    with contextlib.closing(sqlite3.connect(seed_box_path)) as db:
        kept = [Receipt.from_bytes(row[0]) for row in db.execute("SELECT data FROM receipts")]
    assert sorted(r.piece_index for r in kept) == list(range(meta.piece_count))
    assert {(r.uploader_pk, r.downloader_pk) for r in kept} == {(up_key.pk, down_key.pk)}
    assert (tmp_path / "leech" / "f").read_bytes() == data


def test_a_piece_that_fails_or_loses_leaves_no_pending_receipt(tmp_path: Path):
    meta = metainfo.parse(
        make_torrent([("f", bytes(3 * PIECE))], name="f", single=True, piece_length=PIECE)
    )
    journal = Journal(journal_path(tmp_path / "box.sqlite3"))
    assert journal.path.name == "box.journal.sqlite3"
    exchange = Exchange(meta, keypair(21), REALM, None, journal=journal)

    class Peer:
        pbts = ext.PeerReceiptInfo(True, remote_id=1, pk=keypair(22).pk, realm=REALM)
        strikes = ext.Strikes()
        outbox: list = []
        outbox_since = 0.0
        closed = False

        def send_extension(self, payload: bytes) -> None:
            self.sent = payload

    peer = Peer()
    exchange.piece_arrived(peer, 1)
    assert [e.piece_index for e in journal.pending(meta.info_hash, keypair(21).pk)] == [1]
    exchange.piece_dropped(peer, 1)  # failed its check, or another copy won
    assert journal.pending(meta.info_hash, keypair(21).pk) == []
    journal.close()
