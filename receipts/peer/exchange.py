"""Both sides of the ``pbts_receipt`` extension for one torrent session (docs/bep10.md).

Downloader: a receipt per piece that passed its check, signed with the member's key, naming the
connection's peer; sent in RECEIPTS messages (when :data:`SEND_AT` wait or after
:data:`SEND_AFTER` seconds); kept until acknowledged and sent again on a new connection to the
same key (at most :data:`MAX_SENDS` times). With a :class:`~receipts.peer.journal.Journal`
each receipt is journaled before its piece is written and until it is acknowledged, so a
restarted peer sends again what a killed one had not delivered (:meth:`Exchange.resume`).

Uploader: records which whole pieces went to which key, checks received receipts
(:class:`receipts.peer.extension.Checker`), writes the good ones to the
:class:`~receipts.peer.receipts_box.ReceiptBox` (fsynced) before acknowledging them, and
counts strikes; with a journal, the pieces sent whole to each key are remembered across a
restart. Plain Python, no I/O besides the box and the journal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from receipts import bls
from receipts.client.keyfile import KeyPair
from receipts.format import Receipt, time_bucket
from receipts.peer import extension as ext
from receipts.peer.journal import Journal, Pending
from receipts.peer.metainfo import Metainfo
from receipts.peer.receipts_box import ReceiptBox
from receipts.peer.wire import BLOCK_SIZE

SEND_AT = 32
SEND_AFTER = 2.0
MAX_SENDS = 3


def sign_receipt_bytes(sk: int, data: bytes) -> tuple[bytes, float]:
    """(signature, seconds spent): runs in the signer process, or inline."""
    started = time.perf_counter()
    signature = bls.sign(sk, data)
    return signature, time.perf_counter() - started


def _worker_init() -> None:
    """The signing process ignores SIGINT and SIGTERM (sent to the whole process group by a
    terminal or a supervisor): the main process stops it once its last receipts are signed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start_signer(method: str = "fork") -> concurrent.futures.ProcessPoolExecutor:
    """A one-process pool for signing (pyblst holds the GIL, so a thread would not help).

    Call it before any thread exists (before the event loop and its executor): with "fork" the
    worker starts at once, a copy of this process with its modules loaded, and a fork with one
    thread is safe. "spawn" starts a fresh interpreter (about 0.4 s of imports).
    """
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context(method), initializer=_worker_init
    )
    pool.submit(sign_receipt_bytes, 1, b"warm up")
    return pool


class Peer(Protocol):
    """What the exchange needs of a connection."""

    pbts: ext.PeerReceiptInfo | None
    strikes: ext.Strikes
    outbox: list[ext.SignedReceipt]
    outbox_since: float
    closed: bool

    def send_extension(self, payload: bytes) -> None: ...


@dataclass
class Counters:
    """Receipts ``signed`` (as downloader), ``acked`` by uploaders (stored or duplicate),
    ``nacked`` (refused by them); ``received`` (kept, as uploader), ``duplicates``,
    ``refused``; ``strikes`` per kind; ``sign_seconds`` and ``check_seconds`` spent signing and
    checking (``checked`` receipts: fields and signatures), wall seconds; ``resumed``: receipts
    of a previous run, not acknowledged then, sent again by this one."""

    signed: int = 0
    acked: int = 0
    nacked: int = 0
    received: int = 0
    duplicates: int = 0
    refused: int = 0
    strikes: dict[str, int] = field(default_factory=dict)
    sign_seconds: float = 0.0
    check_seconds: float = 0.0
    checked: int = 0
    resumed: int = 0


class Exchange:
    """Receipts for torrent ``meta`` with the member's ``keypair`` in ``realm``; received
    receipts go to ``box`` (None: a download-only session keeps none), then ``on_kept()``;
    ``journal``: what must survive a crash (None: nothing)."""

    def __init__(
        self,
        meta: Metainfo,
        keypair: KeyPair,
        realm: bytes,
        box: ReceiptBox | None,
        *,
        on_kept: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        signer: concurrent.futures.Executor | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.meta = meta
        self.keypair = keypair
        self.realm = realm
        self.box = box
        self.on_kept = on_kept
        self.clock = clock
        self.counters = Counters()
        self.signer = signer
        self.journal = journal
        self._arriving: dict[tuple[int, int], bytes] = {}  # (id(peer), index) -> receipt
        self._signing: dict[asyncio.Future, bytes] = {}  # future -> uploader key
        self._unacked: dict[bytes, dict[bytes, list]] = {}  # pk -> rid -> [entry, sends]
        self._sent_blocks: dict[tuple[bytes, int], set[int]] = {}
        self._served: set[tuple[bytes, int]] = set()
        if journal is not None:  # pieces a previous run sent whole
            self._served = journal.served(meta.info_hash, keypair.pk)
        self.checker = ext.Checker(
            realm=realm,
            my_pk=keypair.pk,
            piece_length=self._piece_length,
            served=lambda pk, ih, index: (pk, index) in self._served,
            known=self._known,
            clock=clock,
        )

    def handshake_fields(self) -> dict[bytes, object]:
        """Keys for our BEP 10 handshake."""
        return ext.handshake_fields(self.keypair.pk, self.realm)

    def peer_info(self, handshake: dict[bytes, object]) -> ext.PeerReceiptInfo:
        """Whether receipts are on with the peer that sent ``handshake``."""
        return ext.peer_receipt_info(handshake, my_pk=self.keypair.pk, my_realm=self.realm)

    def _piece_length(self, info_hash: bytes, index: int) -> int | None:
        if info_hash != self.meta.info_hash or not 0 <= index < self.meta.piece_count:
            return None
        return self.meta.piece_size(index)

    def _known(self, receipt_id: bytes) -> bool:
        return self.box is not None and self.box.contains(receipt_id)

    # --- downloader ----------------------------------------------------------------------------

    def _receipt(self, uploader_pk: bytes, index: int) -> bytes:
        return Receipt(
            realm=self.realm,
            info_hash=self.meta.info_hash,
            piece_index=index,
            piece_length=self.meta.piece_size(index),
            uploader_pk=uploader_pk,
            downloader_pk=self.keypair.pk,
            time_bucket=time_bucket(self.clock()),
        ).to_bytes()

    def piece_arrived(self, peer: Peer, index: int) -> None:
        """Piece ``index`` came wholly from ``peer`` and is about to be checked and written:
        its receipt is journaled first, so it is sent even if we are killed once it is on
        disk (then :meth:`piece_received` or :meth:`piece_dropped`)."""
        info = peer.pbts
        if info is None or not info.enabled:
            return
        data = self._receipt(info.pk, index)
        self._arriving[(id(peer), index)] = data
        if self.journal is not None:
            entry = Pending(hashlib.sha256(data).digest(), info.pk, index, data)
            self.journal.add_pending(self.meta.info_hash, self.keypair.pk, entry)

    def piece_dropped(self, peer: Peer, index: int) -> None:
        """The piece from ``peer`` failed its check, or another copy won: no receipt."""
        data = self._arriving.pop((id(peer), index), None)
        if data is not None and self.journal is not None:
            self.journal.settle([hashlib.sha256(data).digest()])

    def resume(self, have: bytearray) -> int:
        """At start: the receipts a previous run journaled and never had acknowledged, for
        pieces on disk, wait for their uploaders (sent when a connection to that key opens,
        at most :data:`MAX_SENDS` times); those of pieces we lack are forgotten. Returns how
        many wait."""
        if self.journal is None:
            return 0
        forget = []
        for entry in self.journal.pending(self.meta.info_hash, self.keypair.pk):
            index = entry.piece_index
            try:
                realm = Receipt.from_bytes(entry.data).realm
            except ValueError:
                realm = b""
            if not (0 <= index < len(have) and have[index]) or realm != self.realm:
                forget.append(entry.receipt_id)
                continue
            signature, seconds = sign_receipt_bytes(self.keypair.sk, entry.data)
            self.counters.sign_seconds += seconds
            item = [ext.SignedReceipt(entry.data, signature), 0]
            self._unacked.setdefault(entry.uploader_pk, {})[entry.receipt_id] = item
            self.counters.resumed += 1
        self.journal.settle(forget)
        return self.counters.resumed

    def piece_received(self, peer: Peer, index: int) -> None:
        """Piece ``index`` came wholly from ``peer`` and passed its check: sign its receipt
        (in the ``signer`` process when there is one, so the event loop keeps moving data)."""
        info = peer.pbts
        data = self._arriving.pop((id(peer), index), None)
        if info is None or not info.enabled:
            return
        if data is None:
            data = self._receipt(info.pk, index)
        if self.signer is None:
            self._signed(peer, data, *sign_receipt_bytes(self.keypair.sk, data))
            return
        future = asyncio.get_running_loop().run_in_executor(
            self.signer, sign_receipt_bytes, self.keypair.sk, data
        )
        self._signing[future] = info.pk
        future.add_done_callback(lambda f: self._sign_done(peer, data, f))

    def _sign_done(self, peer: Peer, data: bytes, future: asyncio.Future) -> None:
        self._signing.pop(future, None)
        try:
            signature, seconds = future.result()
        except Exception:  # the worker died: sign here
            signature, seconds = sign_receipt_bytes(self.keypair.sk, data)
        self._signed(peer, data, signature, seconds)

    def _signed(self, peer: Peer, data: bytes, signature: bytes, seconds: float) -> None:
        assert peer.pbts is not None
        entry = ext.SignedReceipt(data, signature)
        self.counters.sign_seconds += seconds
        self.counters.signed += 1
        rid = hashlib.sha256(data).digest()
        self._unacked.setdefault(peer.pbts.pk, {})[rid] = [entry, 1]
        if not peer.outbox:
            peer.outbox_since = time.monotonic()
        peer.outbox.append(entry)
        if len(peer.outbox) >= SEND_AT or peer.closed:
            self.flush(peer)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the receipts being signed (before a stop's last flush)."""
        if self._signing:
            await asyncio.wait(list(self._signing), timeout=timeout)

    def flush(self, peer: Peer, *, force: bool = True) -> None:
        """Send ``peer``'s waiting receipts (``force=False``: only if due)."""
        if not peer.outbox or peer.pbts is None or not peer.pbts.enabled:
            return
        if not force and (
            len(peer.outbox) < SEND_AT and time.monotonic() - peer.outbox_since < SEND_AFTER
        ):
            return
        entries, peer.outbox = peer.outbox, []
        for start in range(0, len(entries), ext.MAX_ENTRIES):
            peer.send_extension(ext.encode_receipts(entries[start : start + ext.MAX_ENTRIES]))

    def peer_connected(self, peer: Peer) -> None:
        """Receipts are on with a new connection: send again what its key has not
        acknowledged (each receipt at most :data:`MAX_SENDS` times)."""
        assert peer.pbts is not None
        waiting = self._unacked.get(peer.pbts.pk, {})
        for rid, item in list(waiting.items()):
            if item[1] >= MAX_SENDS:
                del waiting[rid]
                continue
            item[1] += 1
            peer.outbox.append(item[0])
        peer.outbox_since = time.monotonic()

    def waiting(self, peer: Peer) -> int:
        """Receipts for ``peer``'s key being signed, not sent or not acknowledged yet."""
        if peer.pbts is None or not peer.pbts.enabled:
            return 0
        signing = sum(1 for pk in self._signing.values() if pk == peer.pbts.pk)
        return signing + len(peer.outbox) + len(self._unacked.get(peer.pbts.pk, {}))

    def _ack(self, peer: Peer, message: ext.AckMessage) -> None:
        waiting = self._unacked.get(peer.pbts.pk if peer.pbts else b"", {})
        settled = []
        for rid, status in message.entries:
            if waiting.pop(rid, None) is None:
                continue  # not ours, or settled already: ignored
            settled.append(rid)
            if status == ext.AckStatus.REFUSED:
                self.counters.nacked += 1
            else:
                self.counters.acked += 1
        if self.journal is not None:
            self.journal.settle(settled)

    # --- uploader ------------------------------------------------------------------------------

    def block_sent(self, peer: Peer, index: int, begin: int) -> None:
        """A block of piece ``index`` goes to ``peer`` (called just before it is written); once
        every block of the piece went to that key, a receipt for it will be accepted (check 7),
        by a restarted process too when there is a journal."""
        if peer.pbts is None or not peer.pbts.enabled:
            return
        key = (peer.pbts.pk, index)
        if key in self._served:
            return
        blocks = self._sent_blocks.setdefault(key, set())
        blocks.add(begin)
        if len(blocks) * BLOCK_SIZE >= self.meta.piece_size(index):
            self._served.add(key)
            del self._sent_blocks[key]
            if self.journal is not None:
                self.journal.add_served(self.meta.info_hash, self.keypair.pk, *key)

    def on_message(self, peer: Peer, payload: bytes) -> bool:
        """Handle a ``pbts_receipt`` payload from ``peer``. Returns True when the peer must be
        disconnected (:data:`receipts.peer.extension.MAX_STRIKES` strikes). Never raises for
        bad input."""
        if peer.pbts is None or not peer.pbts.enabled:
            return self._strike(peer, "unexpected")
        try:
            message = ext.decode(payload)
        except ext.BadMessage as exc:
            return self._strike(peer, exc.kind)
        if isinstance(message, ext.AckMessage):
            self._ack(peer, message)
            return False
        started = time.perf_counter()
        verdicts = self.checker.check(peer.pbts.pk, message.entries)
        self.counters.check_seconds += time.perf_counter() - started
        self.counters.checked += len(verdicts)
        good = [v for v in verdicts if v.status == ext.AckStatus.STORED]
        kept = 0
        if good and self.box is not None:
            kept = self.box.add((v.receipt, v.entry.data, v.entry.signature) for v in good)
        elif good:
            good = []  # nowhere to keep them: refuse nothing, store nothing, acknowledge none
        self.counters.received += kept
        answers = [(v.receipt_id, v.status) for v in verdicts if v.status != ext.AckStatus.STORED]
        answers += [(v.receipt_id, v.status) for v in good]
        for start in range(0, len(answers), ext.MAX_ENTRIES):
            peer.send_extension(ext.encode_ack(answers[start : start + ext.MAX_ENTRIES]))
        if kept:
            self.on_kept()
        disconnect = False
        for verdict in verdicts:
            if verdict.status == ext.AckStatus.DUPLICATE:
                self.counters.duplicates += 1
            elif verdict.status == ext.AckStatus.REFUSED:
                self.counters.refused += 1
                disconnect = self._strike(peer, verdict.kind) or disconnect
        return disconnect

    def _strike(self, peer: Peer, kind: str) -> bool:
        self.counters.strikes[kind] = self.counters.strikes.get(kind, 0) + 1
        return peer.strikes.add(kind)
