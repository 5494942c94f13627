"""One torrent's swarm session: listening and dialling (BEP 3 over TCP), the pieces we have,
choking and the upload limit (:mod:`receipts.peer.choker`), completed pieces (SHA-1 in a worker
thread), announces, the receipts exchange. Peers come from the tracker only (BEP 27)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from receipts.peer import CLIENT_NAME, PEER_ID_PREFIX, wire
from receipts.peer.choker import Throttle, choose
from receipts.peer.connection import MAX_HASH_FAILS, Connection
from receipts.peer.exchange import Exchange
from receipts.peer.metainfo import Metainfo
from receipts.peer.picker import Picker, PieceDownload
from receipts.peer.storage import Storage
from receipts.peer.tracker_client import AnnounceParams, Announcer, TrackerError

log = logging.getLogger("receipts.peer")

CHOKE_SECONDS = 10.0
DIAL_TIMEOUT = 10.0
SNUB_SECONDS = 60.0
"""A peer with requests in flight that sends no block for this long is disconnected."""
KEEPALIVE_SECONDS = 60.0
LONELY_SECONDS = 60.0
"""A leecher the tracker gave no peer announces again after this long (or the tracker's
``min interval``), not after the full interval."""
RETRY_SECONDS = 30.0
"""A peer address that failed is not dialled again for this long."""


def new_peer_id() -> bytes:
    """``-PB0100-`` and 12 random bytes (BEP 20)."""
    return PEER_ID_PREFIX + os.urandom(12).hex()[:12].encode()


class Session:
    """A torrent session. ``have``: one byte per piece (from a recheck). ``exchange``: the
    receipts (None: plain BitTorrent). ``announcer``: the trackers (None: no announces; peers
    only via :meth:`add_peers`)."""

    def __init__(
        self,
        meta: Metainfo,
        storage: Storage,
        have: bytearray,
        *,
        exchange: Exchange | None = None,
        announcer: Announcer | None = None,
        bind: str = "0.0.0.0",
        port: int = 0,
        max_peers: int = 50,
        upload_slots: int = 8,
        pipeline: int = 128,
        peer_id: bytes | None = None,
        upload_rate: float = 0.0,
    ) -> None:
        self.meta = meta
        self.storage = storage
        self.have = have
        self.exchange = exchange
        self.announcer = announcer
        self.bind = bind
        self.port = port
        self.max_peers = max_peers
        self.upload_slots = upload_slots
        self.pipeline = pipeline
        self.throttle = Throttle(upload_rate)  # bytes/s for all uploads, 0: unlimited
        self.peer_id = peer_id or new_peer_id()
        self.picker = Picker(have, meta.piece_size)
        self.conns: list[Connection] = []
        self.known: dict[tuple[str, int], float] = {}  # address -> not before (monotonic)
        self.uploaded = 0
        self.downloaded = 0
        self.wasted = 0
        self.hash_fails = 0
        self.complete = all(have)
        self.completed = asyncio.Event()
        if self.complete:
            self.completed.set()
        self.started_at = time.monotonic()
        self.completed_at: float | None = time.monotonic() if self.complete else None
        self.tracker_error = ""
        self.tracker_peers = 0
        self._pending_event = "started"
        self._announce_now = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._dialling: set[tuple[str, int]] = set()
        self._round = 0
        self._optimistic: Connection | None = None
        self._checks: set[asyncio.Future[Any]] = set()
        self.on_complete: Callable[[], None] = lambda: None
        self._dial_tasks: set[asyncio.Task[None]] = set()

    # --- what connections ask -----------------------------------------------------------------

    def handshake_bytes(self) -> bytes:
        return wire.encode_handshake(self.meta.info_hash, self.peer_id)

    def ext_handshake_fields(self) -> dict[bytes, Any]:
        """Our BEP 10 handshake: client name, request queue depth, and the PBTS keys."""
        fields: dict[bytes, Any] = {
            b"m": {},
            b"v": CLIENT_NAME.encode(),
            b"reqq": 500,
            b"p": self.port,
        }
        if self.exchange is not None:
            fields.update(self.exchange.handshake_fields())
        return fields

    @property
    def left(self) -> int:
        """Bytes still missing."""
        return sum(self.meta.piece_size(i) for i, h in enumerate(self.have) if not h)

    def attach(self, conn: Connection) -> bool:
        """A handshake completed; False when that peer is connected already or we are full."""
        if len(self.conns) >= self.max_peers or any(c.peer_id == conn.peer_id for c in self.conns):
            return False
        self.conns.append(conn)
        return True

    def detach(self, conn: Connection) -> None:
        """A connection ended: its partial pieces go back to the picker."""
        if conn not in self.conns:
            return
        self.conns.remove(conn)
        self.picker.peer_bits(conn.bits, -1)
        for download in conn.downloads:
            self.picker.drop(download)
        conn.downloads.clear()
        if conn is self._optimistic:
            self._optimistic = None

    def not_again(self, address: tuple[str, int], seconds: float) -> None:
        """Do not dial ``address`` for ``seconds``."""
        self.known[address] = time.monotonic() + seconds

    def extension_handshake(self, conn: Connection, fields: dict[bytes, Any]) -> None:
        if self.exchange is None:
            return
        conn.pbts = self.exchange.peer_info(fields)
        if conn.pbts.enabled:
            self.exchange.peer_connected(conn)
            self.exchange.flush(conn)

    def interest_changed(self, conn: Connection) -> None:
        if conn.peer_interested and conn.am_choking:
            unchoked = sum(1 for c in self.conns if not c.am_choking)
            if unchoked < self.upload_slots:
                conn.set_choking(False)

    # --- pieces ---------------------------------------------------------------------------------

    def piece_complete(self, conn: Connection, download: PieceDownload) -> None:
        """All blocks of ``download`` came from ``conn``: check and write it in a thread."""
        download.checking = True
        if self.exchange is not None:  # its receipt journaled before the piece is written
            self.exchange.piece_arrived(conn, download.index)
        data = download.buffer
        download.buffer = bytearray()
        # SHA-1 and pwrite release the GIL: a worker thread does them beside the event loop.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self.storage.store_if_valid, download.index, data)
        self._checks.add(future)
        future.add_done_callback(lambda f: self._checked(conn, download, f))

    def _checked(self, conn: Connection, download: PieceDownload, future: asyncio.Future) -> None:
        self._checks.discard(future)
        try:
            ok = future.result()
        except Exception as exc:  # disk full, file removed...
            log.error("cannot write piece %d: %s", download.index, exc)
            ok = False
        if self.exchange is not None and (not ok or self.have[download.index]):
            self.exchange.piece_dropped(conn, download.index)
        if self.have[download.index]:
            return  # another copy won meanwhile
        if not ok:
            self.picker.drop(download)
            self.hash_fails += 1
            conn.hash_fails += 1
            if conn.hash_fails >= MAX_HASH_FAILS:
                self.not_again(conn.address, 3600)
                conn.close("pieces fail their check")
            else:
                conn.fill_requests()
            return
        for other in self.picker.completed(download):
            owner = other.owner
            if isinstance(owner, Connection):
                owner.cancel_download(other)
        have = wire.have(download.index)
        for c in self.conns:
            if c.bits[download.index]:
                c.wanted -= 1
                if not c.wanted:
                    c.update_interest()
            else:
                c.send(have)
        if self.exchange is not None:
            self.exchange.piece_received(conn, download.index)
        if self.picker.missing == 0:
            self._finish()
        elif not conn.closed:
            conn.fill_requests()

    def _finish(self) -> None:
        self.complete = True
        self.completed_at = time.monotonic()
        self.completed.set()
        self.on_complete()
        self._pending_event = "completed"
        self._announce_now.set()
        for c in list(self.conns):
            if self.exchange is not None:
                self.exchange.flush(c)
        self._close_seeds()

    def _close_seeds(self, *, grace: float = 10.0) -> None:
        """Close connections to seeds once their receipts are acknowledged (or after grace)."""
        late = time.monotonic() - (self.completed_at or 0.0) > grace
        for c in list(self.conns):
            if c.seed and (late or self.exchange is None or not self.exchange.waiting(c)):
                self.not_again(c.address, 300)
                c.close("both sides are seeds")

    # --- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (the port is chosen by the OS when 0) and start announcing and ticking."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self, outgoing=False, address=("?", 0)), self.bind, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._tick_loop()))
        if self.announcer is not None:
            self._tasks.append(asyncio.create_task(self._announce_loop()))

    async def stop(self, *, announce_timeout: float = 5.0, ack_timeout: float = 5.0) -> None:
        """Stop: close the listener; finish the pieces being checked and the receipts being
        signed, send them and wait (up to ``ack_timeout`` s) for their ACKs; close every
        connection once its buffer is sent; announce ``stopped``."""
        tasks = self._tasks + list(self._dial_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            self._server.close()
        if self._checks:  # a piece that passes now still gets its receipt
            await asyncio.wait(list(self._checks), timeout=30)
        exchange = self.exchange
        if exchange is not None:
            await exchange.drain()
            for c in self.conns:
                exchange.flush(c)
            deadline = time.monotonic() + ack_timeout
            while time.monotonic() < deadline and any(exchange.waiting(c) for c in self.conns):
                await asyncio.sleep(0.05)
        conns = list(self.conns)
        for c in conns:
            c.close()
        # Closing flushes what is buffered; the loop must live until that is done.
        lost = [c.lost for c in conns if c.lost is not None]
        if lost:
            await asyncio.wait(lost, timeout=ack_timeout)
        if self.announcer is not None:
            try:
                if self._pending_event == "completed":
                    await self.announcer.announce(
                        self._params("completed"), timeout=announce_timeout
                    )
                await self.announcer.announce(self._params("stopped"), timeout=announce_timeout)
            except TrackerError as exc:
                self.tracker_error = str(exc)
        await asyncio.get_running_loop().run_in_executor(None, self.storage.sync)

    def _params(self, event: str) -> AnnounceParams:
        return AnnounceParams(
            info_hash=self.meta.info_hash,
            peer_id=self.peer_id,
            port=self.port,
            uploaded=self.uploaded,
            downloaded=self.downloaded,
            left=self.left,
            event=event,
            numwant=0 if event == "stopped" else 50,
        )

    async def _announce_loop(self) -> None:
        assert self.announcer is not None
        interval, failures = 0.0, 0
        while True:
            event = self._pending_event
            try:
                result = await self.announcer.announce(self._params(event))
            except TrackerError as exc:
                self.tracker_error = str(exc)
                failures += 1
                interval = min(300.0, 5.0 * 2**failures) if not exc.failure else 60.0
                log.warning("announce failed: %s", exc)
            else:
                failures = 0
                if self._pending_event == event:
                    self._pending_event = ""
                self.tracker_error = result.warning
                self.tracker_peers = len(result.peers)
                self.add_peers(result.peers)
                interval = float(max(result.interval, result.min_interval, 1))
                if not self.complete and not self.conns and not result.peers:
                    # Nobody to download from yet: ask again as soon as the tracker allows.
                    interval = float(max(result.min_interval, LONELY_SECONDS))
            self._announce_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._announce_now.wait(), timeout=interval)

    def add_peers(self, peers: tuple[tuple[str, int], ...] | list[tuple[str, int]]) -> None:
        """Peers to dial (from the tracker)."""
        for address in peers:
            if address != (self.bind, self.port):
                self.known.setdefault(address, 0.0)
        self._dial()

    def _dial(self) -> None:
        now = time.monotonic()
        connected = {c.address for c in self.conns}
        room = self.max_peers - len(self.conns) - len(self._dialling)
        for address, not_before in list(self.known.items()):
            if room <= 0:
                break
            if address in connected or address in self._dialling or not_before > now:
                continue
            room -= 1
            self._dialling.add(address)
            self.known[address] = now + RETRY_SECONDS
            task = asyncio.create_task(self._connect(address))
            self._dial_tasks.add(task)
            task.add_done_callback(self._dial_tasks.discard)

    async def _connect(self, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: Connection(self, outgoing=True, address=address), *address
                ),
                DIAL_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect to %s: %s", address, exc)
        finally:
            self._dialling.discard(address)

    async def _tick_loop(self) -> None:
        last = time.monotonic()
        last_keepalive = last
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for c in list(self.conns):
                c.sample_rates(max(now - last, 0.001))
                if self.exchange is not None:
                    self.exchange.flush(c, force=False)
                if c.inflight and now - c.last_block_at > SNUB_SECONDS:
                    c.close("no block for a minute")
            last = now
            if now - last_keepalive >= KEEPALIVE_SECONDS:
                last_keepalive = now
                for c in self.conns:
                    c.send(wire.KEEP_ALIVE)
            if self.complete:
                self._close_seeds()
            self._round += 1
            if self._round % int(CHOKE_SECONDS) == 0:
                self.choke_round()
            self._dial()

    def choke_round(self) -> None:
        """Re-rank the interested peers (:func:`receipts.peer.choker.choose`)."""
        unchoke, self._optimistic = choose(
            self.conns,
            slots=self.upload_slots,
            seeding=self.complete,
            new_optimistic=(self._round // int(CHOKE_SECONDS)) % 3 == 0,
            optimistic=self._optimistic,
        )
        for c in self.conns:
            c.set_choking(c not in unchoke)
