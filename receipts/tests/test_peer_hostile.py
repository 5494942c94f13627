"""Hostile peers against a real PBTS seeder session on 127.0.0.1 (asyncio, in this process):
malformed, oversized, wrong-realm and forged receipts, receipts naming someone else or for
pieces never sent, are refused with an ACK, counted, and cost the sender its connection at the
stated number of strikes (docs/bep10.md); framing garbage closes the connection at once. The
seeder never crashes and serves the next peer; only the good receipt reaches its box."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from pathlib import Path

import pytest

from receipts import bls
from receipts.client.keyfile import KeyPair
from receipts.format import Receipt, realm_id, time_bucket
from receipts.peer import extension as ext
from receipts.peer import metainfo, wire
from receipts.peer.exchange import Exchange
from receipts.peer.receipts_box import ReceiptBox
from receipts.peer.session import Session
from receipts.peer.storage import Storage
from receipts.tests.peer_helpers import make_torrent

REALM = realm_id("PBTS test", "https://tracker.example.org")
PIECE = 32 * 1024
DATA = os.urandom(5 * PIECE + 1000)


def keypair(seed: int) -> KeyPair:
    sk, pk = bls.keygen(bytes([seed]) * 32)
    return KeyPair(sk=sk, pk=pk)


SEEDER, ATTACKER, STRANGER = keypair(1), keypair(2), keypair(3)


class RawPeer:
    """A hand-driven peer: handshakes, requests, and arbitrary frames."""

    opened: list[RawPeer] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        RawPeer.opened.append(self)
        self.frames = wire.FrameReader()
        self.queue: list[tuple[int, bytes]] = []

    @classmethod
    async def connect(
        cls, port: int, meta: metainfo.Metainfo, *, key: KeyPair, realm: bytes = REALM
    ) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        writer.write(
            wire.encode_handshake(meta.info_hash, b"-XX0000-" + os.urandom(6).hex().encode())
        )
        head = await asyncio.wait_for(reader.readexactly(wire.HANDSHAKE_LENGTH), 10)
        assert wire.parse_handshake(head).extensions
        writer.write(wire.ext_handshake(ext.handshake_fields(key.pk, realm)))
        writer.write(wire.simple(wire.INTERESTED))
        return peer

    async def next(self, message_id: int, timeout: float = 10.0) -> bytes:
        """The payload of the next frame with ``message_id`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                for i, (mid, payload) in enumerate(self.queue):
                    if mid == message_id:
                        del self.queue[i]
                        return payload
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the seeder")
                self.queue += list(self.frames.feed(data))

    async def download_piece(self, meta: metainfo.Metainfo, index: int) -> bytes:
        size = meta.piece_size(index)
        for begin in range(0, size, wire.BLOCK_SIZE):
            self.writer.write(wire.request(index, begin, min(wire.BLOCK_SIZE, size - begin)))
        blocks = {}
        while sum(len(b) for b in blocks.values()) < size:
            got_index, begin, block = wire.parse_piece(await self.next(wire.PIECE))
            assert got_index == index
            blocks[begin] = block
        return b"".join(blocks[b] for b in sorted(blocks))

    def send_receipts(self, payload: bytes) -> None:
        self.writer.write(wire.extended(ext.LOCAL_ID, payload))

    async def ack(self) -> list[tuple[bytes, ext.AckStatus]]:
        while True:
            ext_id, rest = wire.parse_extended(await self.next(wire.EXTENDED))
            if ext_id == ext.LOCAL_ID:
                message = ext.decode(rest)
                assert isinstance(message, ext.AckMessage)
                return list(message.entries)

    @classmethod
    async def close_all(cls) -> None:
        """Close every raw connection opened (end of a scenario)."""
        opened, cls.opened = cls.opened, []
        for peer in opened:
            peer.writer.close()
            with contextlib.suppress(OSError):
                await peer.writer.wait_closed()

    async def closed(self, timeout: float = 10.0) -> bool:
        """True once the seeder has closed the connection."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        return True


def receipt(meta: metainfo.Metainfo, index: int, **changes) -> bytes:
    fields = dict(
        realm=REALM,
        info_hash=meta.info_hash,
        piece_index=index,
        piece_length=meta.piece_size(index),
        uploader_pk=SEEDER.pk,
        downloader_pk=ATTACKER.pk,
        time_bucket=time_bucket(time.time()),
    )
    fields.update(changes)
    return Receipt(**fields).to_bytes()


def signed(data: bytes, key: KeyPair = ATTACKER) -> ext.SignedReceipt:
    return ext.SignedReceipt(data, bls.sign(key.sk, data))


@pytest.fixture
def seeder_setup(tmp_path: Path):
    meta = metainfo.parse(
        make_torrent([("f.bin", DATA)], name="f.bin", single=True, piece_length=PIECE)
    )
    (tmp_path / "f.bin").write_bytes(DATA)
    storage = Storage(meta, tmp_path, create=False)
    box = ReceiptBox(tmp_path / "box.sqlite3")
    exchange = Exchange(meta, SEEDER, REALM, box)
    session = Session(meta, storage, storage.recheck(), exchange=exchange, bind="127.0.0.1")
    yield meta, session, exchange, box
    box.close()
    storage.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_hostile_receipts_are_refused_counted_and_cost_the_connection(seeder_setup):
    meta, session, exchange, box = seeder_setup

    async def scenario():
        await session.start()
        try:
            peer = await RawPeer.connect(session.port, meta, key=ATTACKER)
            await peer.next(wire.UNCHOKE)
            assert await peer.download_piece(meta, 0) == DATA[:PIECE]
            last = meta.piece_count - 1
            assert await peer.download_piece(meta, last) == DATA[last * PIECE :]
            good = signed(receipt(meta, 0))
            forged = ext.SignedReceipt(receipt(meta, last), good.signature)
            hostile = [
                signed(receipt(meta, 0, realm=realm_id("Other", "https://other.example"))),
                signed(receipt(meta, 0, uploader_pk=STRANGER.pk)),  # names someone else
                signed(receipt(meta, 0, downloader_pk=STRANGER.pk), STRANGER),  # not the peer
                signed(receipt(meta, 1)),  # piece 1 was never sent to this peer
                signed(receipt(meta, 0, piece_length=PIECE - 1)),
                forged,
            ]
            peer.send_receipts(ext.encode_receipts([*hostile, good]))
            answers = await peer.ack()
            statuses = dict(answers)
            assert statuses[Receipt.from_bytes(good.data).receipt_id] == ext.AckStatus.STORED
            assert sum(s == ext.AckStatus.REFUSED for s in statuses.values()) == len(hostile)
            assert exchange.counters.strikes == {
                "wrong_realm": 1,
                "not_mine": 1,
                "not_signer": 1,
                "unsolicited": 1,
                "wrong_piece": 1,
                "forged": 1,
            }
            # The same good receipt again: a duplicate, no strike.
            peer.send_receipts(ext.encode_receipts([good]))
            assert await peer.ack() == [(Receipt.from_bytes(good.data).receipt_id, 1)]
            # Malformed and oversized messages: strikes 7 and 8 -> disconnected.
            peer.send_receipts(b"\x01\x00")
            peer.send_receipts(bytes((1, 33)) + bytes(40))
            assert await peer.closed()
            assert exchange.counters.strikes["malformed"] == 1
            assert exchange.counters.strikes["oversized"] == 1
            assert session.conns == []
            # The seeder is fine and does not take the attacker's address back at once.
            assert box.counts()["new"] == 1 and box.contains(
                Receipt.from_bytes(good.data).receipt_id
            )
            honest = await RawPeer.connect(session.port, meta, key=STRANGER)
            await honest.next(wire.UNCHOKE)
            assert await honest.download_piece(meta, 2) == DATA[2 * PIECE : 3 * PIECE]
        finally:
            await RawPeer.close_all()
            await session.stop()

    run(scenario())


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">I", wire.MAX_FRAME + 1) + b"\x07",  # a frame over 1 MiB
        wire.bitfield(b"\xff" * 40),  # wrong bitfield length
        wire.extended(0, b"not bencode"),  # broken extension handshake
        struct.pack(">IB", 2, wire.HAVE) + b"x",  # have of the wrong size
        wire.have(10_000),  # have out of range
    ],
    ids=["oversized-frame", "bitfield", "ext-handshake", "short-have", "have-range"],
)
def test_framing_garbage_closes_only_that_connection(seeder_setup, garbage):
    meta, session, _, _ = seeder_setup

    async def scenario():
        await session.start()
        try:
            peer = await RawPeer.connect(session.port, meta, key=ATTACKER)
            peer.writer.write(garbage)
            assert await peer.closed()
            other = await RawPeer.connect(session.port, meta, key=STRANGER)
            await other.next(wire.UNCHOKE)
            assert await other.download_piece(meta, 1) == DATA[PIECE : 2 * PIECE]
        finally:
            await RawPeer.close_all()
            await session.stop()

    run(scenario())


def test_receipts_from_a_peer_of_another_realm_are_unexpected(seeder_setup):
    """Receipts are off with a peer of another realm; whatever it sends is a strike."""
    meta, session, exchange, box = seeder_setup

    async def scenario():
        await session.start()
        try:
            other_realm = realm_id("Other", "https://other.example")
            peer = await RawPeer.connect(session.port, meta, key=ATTACKER, realm=other_realm)
            await peer.next(wire.UNCHOKE)
            await peer.download_piece(meta, 0)
            for _ in range(ext.MAX_STRIKES):
                peer.send_receipts(ext.encode_receipts([signed(receipt(meta, 0))]))
            assert await peer.closed()
            assert exchange.counters.strikes == {"unexpected": ext.MAX_STRIKES}
            assert box.counts()["new"] == 0
        finally:
            await RawPeer.close_all()
            await session.stop()

    run(scenario())


def test_bad_requests_and_a_non_extension_peer(seeder_setup):
    """Requests out of range are dropped and end the connection after 8; a peer without the
    extension bit gets plain BitTorrent (no extension handshake from us)."""
    meta, session, _, _ = seeder_setup

    async def scenario():
        await session.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", session.port)
            writer.write(
                wire.encode_handshake(meta.info_hash, b"-XX0000-" + bytes(12), extensions=False)
            )
            await reader.readexactly(wire.HANDSHAKE_LENGTH)
            writer.write(wire.simple(wire.INTERESTED))
            peer = RawPeer(reader, writer)
            assert wire.bytes_to_bits(
                await peer.next(wire.BITFIELD), meta.piece_count
            ) == bytearray([1] * meta.piece_count)
            await peer.next(wire.UNCHOKE)
            assert not [m for m, _ in peer.queue if m == wire.EXTENDED]
            for _ in range(8):
                writer.write(wire.request(0, 0, 2 * wire.BLOCK_SIZE))
            assert await peer.closed()
        finally:
            await RawPeer.close_all()
            await session.stop()

    run(scenario())
