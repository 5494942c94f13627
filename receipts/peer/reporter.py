"""Reports the uploader's kept receipts to the site (``POST {site}/report``, docs/receipts.md)
as aggregates: one aggregate signature per (torrent, downloader) group of up to
:data:`GROUP_SIZE` receipts (a lone receipt goes singly signed).

Every ``every`` new receipts or ``seconds`` seconds, and at stop. A failed request (site down,
timeout, 5xx) puts the batch back and is retried after 1, 2, 4 ... up to
:data:`MAX_BACKOFF` seconds. Once the site has answered a receipt it is never reported again
(:mod:`receipts.peer.receipts_box`); only receipts the site refused *because another receipt
of their aggregate was refused* (they hold no id there) go back to the queue, as the site's
documentation asks.

The box is SQLite, used from one worker thread of its own (the HTTP request blocks too), so
the event loop never waits on the disk or the network.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receipts import bls
from receipts.client import ClientError
from receipts.client import report as post_report
from receipts.peer.receipts_box import Batch, ReceiptBox, Stored

GROUP_SIZE = 512
"""Receipts under one aggregate signature."""
MAX_BACKOFF = 300.0
LAST_CHANCE_CHUNK = 500
GROUP_REFUSED = "aggregate: refused with its group"
LATER = ("downloader: not seen", "uploader: you were not seen", "rate:")
"""Refusals that may not hold later (the tracker's statistics flush has not recorded a
member in the swarm yet; a credit rate limit): such receipts are reported again later."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def report_body(batch: Batch) -> dict[str, Any]:
    """The POST /report body for a batch: aggregates per (info_hash, downloader) group."""
    groups: dict[tuple[bytes, bytes], list[Stored]] = defaultdict(list)
    for stored in batch.receipts:
        groups[(stored.info_hash, stored.downloader_pk)].append(stored)
    singles, aggregates = [], []
    for members in groups.values():
        for start in range(0, len(members), GROUP_SIZE):
            chunk = members[start : start + GROUP_SIZE]
            try:
                signature = bls.aggregate([s.signature for s in chunk]) if len(chunk) > 1 else b""
            except ValueError:  # a damaged signature on disk: send them singly
                signature = b""
            if signature:
                aggregates.append(
                    {"receipts": [b64(s.data) for s in chunk], "signature": b64(signature)}
                )
            else:
                singles += [{"receipt": b64(s.data), "signature": b64(s.signature)} for s in chunk]
    body: dict[str, Any] = {}
    if singles:
        body["receipts"] = singles
    if aggregates:
        body["aggregates"] = aggregates
    return body


def read_reply(
    batch: Batch, reply: Any
) -> tuple[list[tuple[bytes, str, str]], list[bytes], list[bytes]]:
    """(settled (receipt id, status, reason), ids to report again, ids to report again later)
    from the site's answer. A receipt the answer does not mention, or one refused only with its
    group, is reported again; one refused for now (:data:`LATER`) later."""
    seen: dict[bytes, tuple[str, str]] = {}
    entries = list(reply.get("receipts") or []) if isinstance(reply, dict) else []
    for group in (reply.get("aggregates") or []) if isinstance(reply, dict) else []:
        entries += list(group.get("receipts") or [])
    for entry in entries:
        try:
            rid = bytes.fromhex(entry["receipt_id"])
        except (KeyError, TypeError, ValueError):
            continue
        seen[rid] = (str(entry.get("status", "")), str(entry.get("reason", "")))
    settled, retry, later = [], [], []
    for stored in batch.receipts:
        status, reason = seen.get(stored.receipt_id, ("", ""))
        if not status or (status == "refused" and reason.startswith(GROUP_REFUSED)):
            retry.append(stored.receipt_id)
        elif status == "refused" and reason.startswith(LATER):
            later.append(stored.receipt_id)
        else:
            settled.append((stored.receipt_id, status, reason))
    return settled, retry, later


@dataclass
class ReportStats:
    """What the reporter did: receipts ``sent`` in answered reports, of which ``accepted``
    (queued or verified) and ``refused``; ``failures`` of requests; the ``last_error``."""

    sent: int = 0
    accepted: int = 0
    refused: int = 0
    reports: int = 0
    failures: int = 0
    deferred: int = 0
    last_error: str = ""
    refusals: dict[str, int] = field(default_factory=dict)


@dataclass
class Reporter:
    """Reports ``box_path``'s receipts of ``realm`` naming ``uploader_pk`` to ``site``."""

    box_path: Path
    site: str
    token: str
    realm: bytes
    uploader_pk: bytes
    every: int = 1024
    seconds: float = 60.0
    limit: int = 4096
    timeout: float = 30.0
    log: Callable[[str], None] = lambda message: None
    stats: ReportStats = field(default_factory=ReportStats)
    _box: ReceiptBox | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _executor: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, "pbts-reporter")
    )

    def notify(self) -> None:
        """New receipts were kept: check whether a report is due."""
        self._wake.set()

    def _open(self) -> ReceiptBox:
        if self._box is None:
            self._box = ReceiptBox(self.box_path)
            self._box.release_orphans()  # a report a killed run had in flight goes again
        return self._box

    def _report_once(self, only: Sequence[bytes] = ()) -> int:
        """One report of up to ``limit`` receipts that are due (or of the ids ``only``), in
        the worker thread. Returns receipts sent (0: nothing to report). Raises ClientError
        when the site did not answer usefully."""
        self._box = self._open()
        batch = self._box.claim(self.realm, self.uploader_pk, self.limit, only=only)
        if batch is None:
            return 0
        try:
            _, reply = post_report(self.site, self.token, report_body(batch), timeout=self.timeout)
        except BaseException:
            self._box.release(batch.batch_id)
            raise
        settled, retry, later = read_reply(batch, reply)
        report_id = str(reply.get("id", "")) if isinstance(reply, dict) else ""
        self._box.settle(batch.batch_id, report_id, settled, retry=retry, later=later)
        self.stats.deferred += len(later)
        self.stats.reports += 1
        self.stats.sent += len(settled)
        for _, status, reason in settled:
            if status == "refused":
                self.stats.refused += 1
                key = reason.split(":", 1)[0]
                self.stats.refusals[key] = self.stats.refusals.get(key, 0) + 1
            else:
                self.stats.accepted += 1
        return len(batch.receipts)

    def _pending(self) -> int:
        return self._open().pending(self.realm, self.uploader_pk)

    def _last_chance(self) -> int:
        """At stop, one more report of every receipt still waiting, even those whose retry
        is scheduled later. Returns how many are left unreported afterwards."""
        box = self._open()
        ids = box.waiting_ids(self.realm, self.uploader_pk)
        for start in range(0, len(ids), LAST_CHANCE_CHUNK):
            self._report_once(ids[start : start + LAST_CHANCE_CHUNK])
        return len(box.waiting_ids(self.realm, self.uploader_pk))

    async def _call(self, fn: Callable[[], int]) -> int:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def report_due(self) -> int:
        """Report every batch waiting now. Returns receipts sent. Raises ClientError."""
        total = 0
        for _ in range(1000):
            sent = await self._call(self._report_once)
            if not sent:
                break
            total += sent
        return total

    async def run(self) -> None:
        """Report when ``every`` receipts wait or the oldest waiting one is ``seconds`` old,
        until cancelled; after a failure wait 1, 2, 4 ... :data:`MAX_BACKOFF` seconds."""
        backoff = 0.0
        last = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()
            now = time.monotonic()
            pending = await self._call(self._pending)
            if not pending:
                last = now
                continue
            if backoff and now - last < backoff:
                continue
            if not backoff and pending < self.every and now - last < self.seconds:
                continue
            last = now
            try:
                await self.report_due()
                backoff = 0.0
            except Exception as exc:  # the site or the disk; the loop itself must go on
                self._failed(exc)
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2)) * random.uniform(0.8, 1.2)

    def _failed(self, exc: Exception) -> None:
        self.stats.failures += 1
        if isinstance(exc, ClientError):
            self.stats.last_error = f"{exc.code}: {exc.message}"
        else:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self.log(f"report failed ({self.stats.last_error}); will retry")

    async def final(self, *, deadline: float) -> bool:
        """At stop: report what is left (receipts whose retry was scheduled later too),
        retrying with backoff until ``deadline`` (a ``time.monotonic()`` value). Returns True
        when nothing is left unreported (what is left stays in the box for the next run or
        ``python -m receipts.peer report``)."""
        backoff = 1.0
        while True:
            try:
                await self.report_due()
                return await self._call(self._last_chance) == 0
            except Exception as exc:
                self._failed(exc)
            if time.monotonic() + backoff > deadline:
                return False
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    def close(self) -> None:
        """Close the box in its thread and stop the worker thread."""

        def shut() -> int:
            if self._box is not None:
                self._box.close()
                self._box = None
            return 0

        self._executor.submit(shut).result(timeout=30)
        self._executor.shutdown(wait=True)
