"""PBTS peer sessions in this process on 127.0.0.1 (no tracker: peers are given directly):
resume from partial and damaged data, two seeders and endgame (every receipt names the one
peer that sent the whole piece; no piece gets two receipts), a multi-file torrent with padding,
the choker's slots, and the tracker client against trackerd over UDP (BEP 15 with the passkey
path as BEP 41 URL data) and parsing HTTP replies."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import struct
from pathlib import Path

import pytest

from receipts import bls
from receipts.client.keyfile import KeyPair
from receipts.format import Receipt, realm_id
from receipts.peer import metainfo, tracker_client, wire
from receipts.peer.exchange import Exchange
from receipts.peer.picker import Picker
from receipts.peer.progress import Output
from receipts.peer.receipts_box import ReceiptBox
from receipts.peer.session import Session
from receipts.peer.storage import Storage
from receipts.tests.peer_helpers import make_torrent, write_files

REALM = realm_id("PBTS test", "https://tracker.example.org")
PIECE = 32 * 1024


def keypair(seed: int) -> KeyPair:
    sk, pk = bls.keygen(bytes([seed]) * 32)
    return KeyPair(sk=sk, pk=pk)


def session_for(
    meta: metainfo.Metainfo, root: Path, key: KeyPair, *, create: bool, box: Path, **kwargs
) -> tuple[Session, ReceiptBox]:
    storage = Storage(meta, root, create=create)
    receipt_box = ReceiptBox(box)
    exchange = Exchange(meta, key, REALM, receipt_box)
    return (
        Session(meta, storage, storage.recheck(), exchange=exchange, bind="127.0.0.1", **kwargs),
        receipt_box,
    )


def kept(box_path: Path) -> list[Receipt]:
    with sqlite3.connect(box_path) as db:
        return [Receipt.from_bytes(row[0]) for row in db.execute("SELECT data FROM receipts")]


async def transfer(leecher: Session, seeders: list[Session], timeout: float = 60.0) -> None:
    for seeder in seeders:
        await seeder.start()
    await leecher.start()
    try:
        leecher.add_peers([("127.0.0.1", s.port) for s in seeders])
        await asyncio.wait_for(leecher.completed.wait(), timeout)
    finally:
        await leecher.stop()  # sends the last receipts and waits for their ACKs
        for seeder in seeders:
            await seeder.stop()


def test_resume_downloads_only_what_is_missing_or_damaged(tmp_path: Path):
    data = random.Random(1).randbytes(20 * PIECE + 777)
    meta = metainfo.parse(
        make_torrent([("f.bin", data)], name="f.bin", single=True, piece_length=PIECE)
    )
    write_files(tmp_path / "seed", "f.bin", [("f.bin", data)], single=True)
    partial = bytearray(data[: 12 * PIECE])
    partial[5 * PIECE] ^= 1  # piece 5 damaged: downloaded again
    (tmp_path / "leech").mkdir()
    (tmp_path / "leech" / "f.bin").write_bytes(partial)
    upload_key, download_key = keypair(1), keypair(2)
    seeder, seed_box = session_for(
        meta, tmp_path / "seed", upload_key, create=False, box=tmp_path / "s.box"
    )
    leecher, leech_box = session_for(
        meta, tmp_path / "leech", download_key, create=True, box=tmp_path / "l.box"
    )
    assert sum(leecher.have) == 11
    asyncio.run(transfer(leecher, [seeder]))
    assert (tmp_path / "leech" / "f.bin").read_bytes() == data
    missing = [5, *range(12, 21)]
    assert leecher.downloaded == sum(meta.piece_size(i) for i in missing)
    assert seeder.uploaded == leecher.downloaded
    receipts = kept(tmp_path / "s.box")
    assert sorted(r.piece_index for r in receipts) == missing
    assert all(r.piece_length == meta.piece_size(r.piece_index) for r in receipts)
    assert {(r.uploader_pk, r.downloader_pk) for r in receipts} == {
        (upload_key.pk, download_key.pk)
    }
    assert leecher.exchange.counters.acked == len(missing)
    seed_box.close()
    leech_box.close()


@pytest.mark.parametrize("padding", [False, True], ids=["multi-file", "multi-file-bep47"])
def test_two_seeders_every_piece_has_one_receipt_naming_its_sender(tmp_path: Path, padding):
    rng = random.Random(2)
    files = [("a/x.bin", rng.randbytes(9 * PIECE + 5)), ("y.bin", rng.randbytes(30 * PIECE))]
    meta = metainfo.parse(make_torrent(files, name="two", piece_length=PIECE, padding=padding))
    keys = [keypair(3), keypair(4)]
    seeders, boxes = [], []
    for i, key in enumerate(keys):
        write_files(tmp_path / f"seed{i}", "two", files, single=False)
        seeder, box = session_for(
            meta, tmp_path / f"seed{i}", key, create=False, box=tmp_path / f"s{i}.box"
        )
        seeders.append(seeder)
        boxes.append(box)
    leecher, leech_box = session_for(
        meta, tmp_path / "leech", keypair(5), create=True, box=tmp_path / "l.box", pipeline=8
    )
    asyncio.run(transfer(leecher, seeders))
    for path, content in files:
        assert (tmp_path / "leech" / "two" / path).read_bytes() == content
    by_seeder = [kept(tmp_path / f"s{i}.box") for i in range(2)]
    pieces = [sorted(r.piece_index for r in got) for got in by_seeder]
    assert sorted(pieces[0] + pieces[1]) == list(range(meta.piece_count))  # once each
    for key, got in zip(keys, by_seeder, strict=True):
        assert all(r.uploader_pk == key.pk for r in got)
    # Each seeder sent at least the whole pieces it was credited for.
    for seeder, got in zip(seeders, by_seeder, strict=True):
        assert seeder.uploaded >= sum(r.piece_length for r in got)
    assert leecher.exchange.counters.signed == meta.piece_count
    for box in (*boxes, leech_box):
        box.close()


def test_endgame_duplicates_whole_pieces_and_the_first_copy_wins():
    have = bytearray(3)
    picker = Picker(have, lambda index: 2 * wire.BLOCK_SIZE)
    everything = bytearray([1, 1, 1])
    a, b = object(), object()
    picker.peer_bits(everything, +1)
    picker.peer_bits(everything, +1)
    first = [picker.pick(everything, a) for _ in range(3)]
    assert sorted(d.index for d in first) == [0, 1, 2]
    assert picker.pick(everything, a) is None  # a has every piece already
    dup = picker.pick(everything, b)  # endgame: b downloads a piece a is downloading, whole
    assert dup is not None and dup.owner is b and dup.received == 0
    assert list(dup.to_request) == [0, wire.BLOCK_SIZE]  # every block, from b
    others = picker.completed(dup)
    assert [d.owner for d in others] == [a] and have[dup.index] == 1
    picker.drop(first[0] if first[0].index != dup.index else first[1])
    assert picker.missing == 2


def test_choking_keeps_the_slots_and_rotates_one(tmp_path: Path):
    data = os.urandom(4 * PIECE)
    meta = metainfo.parse(make_torrent([("f", data)], name="f", single=True, piece_length=PIECE))
    write_files(tmp_path, "f", [("f", data)], single=True)
    storage = Storage(meta, tmp_path, create=False)
    session = Session(meta, storage, storage.recheck(), upload_slots=3)

    class Fake:
        def __init__(self, rate: float, interested: bool = True) -> None:
            self.rate_up, self.rate_down, self.peer_interested = rate, 0.0, interested
            self.am_choking = True

        def set_choking(self, choking: bool) -> None:
            self.am_choking = choking

    peers = [Fake(float(r)) for r in (50, 40, 30, 20, 10)] + [Fake(99.0, interested=False)]
    session.conns = peers  # type: ignore[assignment]
    seen_optimistic = set()
    for round_no in range(1, 31):
        session._round = round_no * 10
        session.choke_round()
        unchoked = [p for p in peers if not p.am_choking]
        assert len(unchoked) == 3 and not peers[0].am_choking and not peers[1].am_choking
        assert peers[-1].am_choking  # not interested
        seen_optimistic |= {id(p) for p in unchoked[2:]}
    assert len(seen_optimistic) >= 2  # the optimistic slot moved
    storage.close()


def test_progress_line_for_a_terminal(capsys):
    out = Output(json_lines=False)
    status = {
        "state": "downloading",
        "pieces": 512,
        "piece_count": 1024,
        "peers": 3,
        "rate_down": 50 * 1024 * 1024,
        "rate_up": 1536,
        "receipts_signed": 500,
        "receipts_received": 7,
        "receipts_reported": 2,
    }
    out.status(status)
    line = capsys.readouterr().out
    assert line.startswith("\rdownloading  50.0% 512/1024 pieces")
    assert "down   50.0 MiB/s up    1.5 KiB/s | peers 3" in line
    assert "receipts signed 500 received 7 reported 2" in line


# --- tracker client ------------------------------------------------------------------------------


def test_http_replies_compact_dict_ipv6_and_failures():
    peers = bytes([127, 0, 0, 1]) + struct.pack(">H", 6881) + bytes([10, 0, 0, 2, 0, 0])
    six = bytes(15) + b"\x01" + struct.pack(">H", 51413)
    reply = tracker_client.parse_http_reply(
        b"d8:completei3e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:"
        + peers
        + b"6:peers618:"
        + six
        + b"e"
    )
    assert reply.peers == (("127.0.0.1", 6881), ("::1", 51413))  # port 0 skipped
    assert (reply.interval, reply.min_interval, reply.complete, reply.incomplete) == (
        900,
        60,
        3,
        1,
    )
    listed = tracker_client.parse_http_reply(
        b"d8:intervali60e5:peersld2:ip9:127.0.0.27:peer id20:" + bytes(20) + b"4:porti7eeee"
    )
    assert listed.peers == (("127.0.0.2", 7),)
    with pytest.raises(tracker_client.TrackerError) as refused:
        tracker_client.parse_http_reply(b"d14:failure reason15:Unknown passkeye")
    assert refused.value.failure == "Unknown passkey"
    with pytest.raises(tracker_client.TrackerError):
        tracker_client.parse_http_reply(b"<html>")
    url = tracker_client.http_url(
        "http://t/announce/KEY",
        tracker_client.AnnounceParams(
            b"\x01" * 20, b"-PB0100-" + b"x" * 12, 6881, 1, 2, 3, "started"
        ),
    )
    assert url.startswith("http://t/announce/KEY?info_hash=%01%01")
    assert "&uploaded=1&downloaded=2&left=3&compact=1" in url and url.endswith("event=started")
    assert tracker_client.url_data_options("udp://h:1/announce/" + "k" * 300)[:2] == b"\x02\xff"
