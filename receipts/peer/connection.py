"""One peer connection (asyncio protocol): the BEP 3 handshake and messages, BEP 10 extension
handshake and messages, requests in flight, serving the peer's requests with backpressure.

Anything a peer sends that breaks the protocol closes its connection (and only it): every
message is handled inside a ``try`` that turns errors into a disconnect, never into a crash.
Shared state (pieces, picker, choking, receipts) belongs to :class:`receipts.peer.session.Session`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from receipts.peer import extension as ext
from receipts.peer import wire
from receipts.peer.picker import PieceDownload

if TYPE_CHECKING:
    from receipts.peer.session import Session

log = logging.getLogger("receipts.peer")

MAX_SERVE_QUEUE = 512
"""Requests of a peer queued while our send buffer is full; more are dropped."""
MAX_PROTOCOL_STRIKES = 8
"""Bad requests (out of range, too long, for pieces we lack) before disconnecting."""
MAX_HASH_FAILS = 3
"""Pieces failing their check from one peer before disconnecting (and banning) it."""
WRITE_HIGH = 4 * 1024 * 1024
REFILL_AT = 16
"""Block requests are sent once this many can go (fewer, larger writes)."""
"""Bytes buffered for sending before the transport says pause_writing."""


class Connection(asyncio.Protocol):
    """A peer wire connection of ``session``; ``outgoing`` when we dialled ``address``."""

    def __init__(self, session: Session, *, outgoing: bool, address: tuple[str, int]) -> None:
        self.session = session
        self.outgoing = outgoing
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] | None = None  # done once the socket is closed
        self.reader = wire.FrameReader()
        self._head = b""
        self.peer_id = b""
        self.attached = False
        self.closed = False
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        self.bits = bytearray(session.meta.piece_count)
        self.wanted = 0  # pieces the peer has and we lack
        self.seed = False
        self._refill = False
        self.ext_ids: dict[bytes, int] = {}
        self.reqq = 250
        self.pbts: ext.PeerReceiptInfo | None = None
        self.strikes = ext.Strikes()
        self.protocol_strikes = 0
        self.hash_fails = 0
        self.outbox: list[ext.SignedReceipt] = []
        self.outbox_since = 0.0
        self.downloads: list[PieceDownload] = []
        self.inflight = 0
        self.serve_queue: deque[tuple[int, int, int]] = deque()
        self.paused = False
        self._serve_timer: asyncio.TimerHandle | None = None
        self.uploaded = 0
        self.downloaded = 0
        self.rate_up = 0.0
        self.rate_down = 0.0
        self._sample = (0, 0)
        self.last_block_at = time.monotonic()
        self.unchoked_at = 0.0

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        if not self.outgoing:
            peer = transport.get_extra_info("peername")
            if peer:
                self.address = (str(peer[0]), int(peer[1]))
        if self.outgoing:
            transport.write(self.session.handshake_bytes())

    def data_received(self, data: bytes) -> None:
        try:
            if not self.attached:
                self._head += data
                if len(self._head) < wire.HANDSHAKE_LENGTH:
                    return
                data = self._head[wire.HANDSHAKE_LENGTH :]
                self._handshake(self._head[: wire.HANDSHAKE_LENGTH])
                self._head = b""
                if self.closed:
                    return
            for message_id, payload in self.reader.feed(data):
                self._dispatch(message_id, payload)
                if self.closed:
                    return
            if self._refill:  # once per read, not once per block: fewer, larger sends
                self._refill = False
                self.fill_requests()
        except wire.ProtocolError as exc:
            self.close(f"protocol error: {exc}")
        except Exception as exc:  # a peer must never crash the process
            log.exception("peer %s: unexpected error", self.address)
            self.close(f"internal error: {exc!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        self.session.detach(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._serve()

    # --- sending -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send_extension(self, payload: bytes) -> None:
        """A ``pbts_receipt`` message with the id the peer gave it (BEP 10)."""
        if self.pbts is not None and self.pbts.enabled:
            self.send(wire.extended(self.pbts.remote_id, payload))

    def close(self, reason: str = "") -> None:
        """Drop the connection (idempotent)."""
        if reason:
            log.info("peer %s: closing: %s", self.address, reason)
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
            self.session.detach(self)

    def set_choking(self, choking: bool) -> None:
        if choking != self.am_choking:
            self.am_choking = choking
            self.send(wire.simple(wire.CHOKE if choking else wire.UNCHOKE))
            if choking:
                self.serve_queue.clear()
            else:
                self.unchoked_at = time.monotonic()

    def update_interest(self) -> None:
        """Tell the peer whether it has pieces we want."""
        want = not self.session.complete and self.wanted > 0
        if want != self.am_interested:
            self.am_interested = want
            self.send(wire.simple(wire.INTERESTED if want else wire.NOT_INTERESTED))

    # --- receiving -----------------------------------------------------------------------------

    def _handshake(self, head: bytes) -> None:
        hs = wire.parse_handshake(head)
        session = self.session
        if hs.info_hash != session.meta.info_hash:
            raise wire.ProtocolError("handshake for another torrent")
        if hs.peer_id == session.peer_id:
            session.not_again(self.address, 600)
            self.close("connected to ourselves")
            return
        self.peer_id = hs.peer_id
        if not self.outgoing:
            self.send(session.handshake_bytes())
        if not session.attach(self):
            self.close("already connected to that peer")
            return
        self.attached = True
        if hs.extensions:
            self.send(wire.ext_handshake(session.ext_handshake_fields()))
        if any(session.have):
            self.send(wire.bitfield(wire.bits_to_bytes(session.have, len(session.have))))

    def _dispatch(self, message_id: int, payload: bytes) -> None:
        session = self.session
        if message_id == wire.PIECE:
            self._piece(*wire.parse_piece(payload))
        elif message_id == wire.REQUEST:
            self._request(*wire.parse_triple(payload))
        elif message_id == wire.HAVE:
            index = wire.parse_index(payload)
            if index >= len(self.bits):
                raise wire.ProtocolError("have out of range")
            if not self.bits[index]:
                self.bits[index] = 1
                self.wanted += not session.have[index]
                session.picker.peer_has(index)
                self._check_seed()
                self.update_interest()
                self.fill_requests()
        elif message_id == wire.BITFIELD:
            bits = wire.bytes_to_bits(payload, len(self.bits))
            session.picker.peer_bits(self.bits, -1)
            self.bits = bits
            self.wanted = sum(b and not h for b, h in zip(bits, session.have, strict=True))
            session.picker.peer_bits(bits, +1)
            self._check_seed()
            self.update_interest()
        elif message_id == wire.CHOKE:
            self.peer_choking = True
            for download in self.downloads:
                download.requeue()
            self.inflight = 0
        elif message_id == wire.UNCHOKE:
            self.peer_choking = False
            self.fill_requests()
        elif message_id == wire.INTERESTED:
            self.peer_interested = True
            session.interest_changed(self)
        elif message_id == wire.NOT_INTERESTED:
            self.peer_interested = False
            session.interest_changed(self)
        elif message_id == wire.CANCEL:
            request = wire.parse_triple(payload)
            if request in self.serve_queue:
                self.serve_queue.remove(request)
        elif message_id == wire.EXTENDED:
            self._extended(*wire.parse_extended(payload))
        # keep-alive (-1), port (9, DHT) and unknown ids: ignored

    def _check_seed(self) -> None:
        self.seed = all(self.bits)
        # Two seeds: closed at once without receipts; with them, at the next tick
        # (Session._close_seeds), once receipts a restarted peer sends again are in.
        if self.seed and self.session.complete and not (self.pbts and self.pbts.enabled):
            self.session.not_again(self.address, 300)
            self.close("both sides are seeds")

    def _extended(self, ext_id: int, rest: bytes) -> None:
        if ext_id == wire.EXT_HANDSHAKE:
            fields = wire.parse_ext_handshake(rest)
            m = fields.get(b"m")
            if isinstance(m, dict):
                self.ext_ids = {k: v for k, v in m.items() if isinstance(v, int)}
            reqq = fields.get(b"reqq")
            if isinstance(reqq, int) and reqq > 0:
                self.reqq = min(reqq, 2000)
            self.session.extension_handshake(self, fields)
        elif (
            ext_id == ext.LOCAL_ID
            and self.session.exchange is not None
            and self.session.exchange.on_message(self, rest)
        ):
            self.session.not_again(self.address, 600)
            self.close(f"{ext.MAX_STRIKES} strikes: {self.strikes.kinds}")
        # other ids: an extension we never offered (BEP 10: ignore)

    def _request(self, index: int, begin: int, length: int) -> None:
        session = self.session
        meta = session.meta
        if self.am_choking:
            return  # BEP 3: requests while choked are ignored
        if (
            index >= meta.piece_count
            or not session.have[index]
            or not 0 < length <= wire.BLOCK_SIZE
            or begin + length > meta.piece_size(index)
        ):
            self.protocol_strikes += 1
            if self.protocol_strikes >= MAX_PROTOCOL_STRIKES:
                self.close("too many bad requests")
            return
        if len(self.serve_queue) >= MAX_SERVE_QUEUE:
            return
        self.serve_queue.append((index, begin, length))
        if not self.paused:
            self._serve()

    def _serve(self) -> None:
        """Send queued blocks until the transport asks us to pause."""
        storage = self.session.storage
        exchange = self.session.exchange
        while self.serve_queue and not self.paused and not self.closed:
            index, begin, length = self.serve_queue[0]
            wait = self.session.throttle.delay(length)
            if wait:  # --upload-rate: ask again once the bucket holds this block
                if self._serve_timer is None:
                    loop = asyncio.get_running_loop()
                    self._serve_timer = loop.call_later(wait, self._serve_later)
                return
            self.serve_queue.popleft()
            block = storage.read_block(index, begin, length)
            if block is None:
                self.close("our data went missing")
                return
            assert self.transport is not None
            if exchange is not None:  # first: a restarted process must know it went out
                exchange.block_sent(self, index, begin)
            self.transport.writelines((wire.piece_header(index, begin, length), block))
            self.uploaded += length
            self.session.uploaded += length

    def _serve_later(self) -> None:
        self._serve_timer = None
        self._serve()

    def _piece(self, index: int, begin: int, block: bytes) -> None:
        for download in self.downloads:
            if download.index == index and begin in download.inflight:
                break
        else:
            self.session.wasted += len(block)
            return  # cancelled, duplicate or never asked: ignored
        if len(block) != download.block_length(begin):
            raise wire.ProtocolError("block of the wrong length")
        download.inflight.discard(begin)
        self.inflight -= 1
        download.buffer[begin : begin + len(block)] = block
        download.received += len(block)
        self.downloaded += len(block)
        self.session.downloaded += len(block)
        self.last_block_at = time.monotonic()
        if download.complete:
            self.downloads.remove(download)
            self.session.piece_complete(self, download)
        self._refill = True

    def fill_requests(self) -> None:
        """Keep up to the pipeline depth of block requests in flight to this peer."""
        if self.peer_choking or self.closed or self.session.complete:
            return
        depth = min(self.reqq, self.session.pipeline)
        if self.inflight and depth - self.inflight < min(REFILL_AT, depth):
            return  # send requests in batches
        requests = []
        while self.inflight < depth:
            download = next((d for d in self.downloads if d.to_request), None)
            if download is None:
                download = self.session.picker.pick(self.bits, self)
                if download is None:
                    break
                self.downloads.append(download)
                continue
            begin = download.to_request.popleft()
            download.inflight.add(begin)
            self.inflight += 1
            requests.append(wire.request(download.index, begin, download.block_length(begin)))
        if requests:
            self.send(b"".join(requests))

    def cancel_download(self, download: PieceDownload) -> None:
        """Another copy of the piece won (endgame): cancel what is still asked."""
        if download in self.downloads:
            self.downloads.remove(download)
            for begin in download.inflight:
                self.send(wire.cancel(download.index, begin, download.block_length(begin)))
            self.inflight -= len(download.inflight)
            download.inflight.clear()
            self.fill_requests()

    def sample_rates(self, seconds: float) -> None:
        """Update the upload/download rates (bytes/s, smoothed) from the counters."""
        up, down = self._sample
        self.rate_up = 0.5 * self.rate_up + 0.5 * (self.uploaded - up) / seconds
        self.rate_down = 0.5 * self.rate_down + 0.5 * (self.downloaded - down) / seconds
        self._sample = (self.uploaded, self.downloaded)
