"""``python -m receipts.peer``: the PBTS BitTorrent client for members.

    download TORRENT OUT_DIR [--seed-ratio R] [--seed-time S]   download, then seed
    seed     TORRENT DATA_DIR                                   check the data, seed
    report   [--box FILE]                                        report kept receipts

Common options: ``--key KEYFILE`` (receipts; without it a plain BitTorrent client),
``--site URL`` (realm and reports; the API token comes from ``PBTS_TOKEN``) or ``--realm HEX``
(no reports), ``--port``, ``--bind``, ``--box``, ``--json``. docs/bep10.md section 5.
SIGINT or SIGTERM: a clean stop (``stopped`` announce, last report, final JSON summary).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from receipts.client import ClientError, load_key_file
from receipts.client.http import request_json
from receipts.peer.exchange import Exchange, start_signer
from receipts.peer.journal import Journal, journal_path
from receipts.peer.metainfo import MetainfoError, load
from receipts.peer.progress import Output, session_status
from receipts.peer.receipts_box import ReceiptBox
from receipts.peer.reporter import Reporter
from receipts.peer.session import Session
from receipts.peer.storage import Storage, StorageError
from receipts.peer.tracker_client import Announcer

TOKEN_ENV = "PBTS_TOKEN"
DEFAULT_BOX = "~/.pbts/box.sqlite3"
FINAL_REPORT_SECONDS = 30.0


class Fatal(Exception):
    """An error that ends the command with exit status 1 and a JSON message."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m receipts.peer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download, then seed")
    download.add_argument("torrent")
    download.add_argument("path", help="directory to download into")
    download.add_argument("--seed-ratio", type=float, help="stop seeding at uploaded/size")
    download.add_argument("--seed-time", type=float, help="stop after seeding this many s")
    download.add_argument(
        "--no-sign-process",
        dest="sign_process",
        action="store_false",
        help="sign receipts in the main process (default: a helper process)",
    )
    seed = commands.add_parser("seed", help="check the data and seed it")
    seed.add_argument("torrent")
    seed.add_argument("path", help="directory holding the torrent's content")
    for sub in (download, seed):
        _common(sub)
        sub.add_argument("--port", type=int, default=0, help="listen port (0: any)")
        sub.add_argument("--bind", default="0.0.0.0", help="listen address")
        sub.add_argument("--max-peers", type=int, default=50)
        sub.add_argument("--upload-slots", type=int, default=8)
        sub.add_argument("--pipeline", type=int, default=256, help="requests in flight per peer")
        sub.add_argument(
            "--upload-rate", type=float, default=0.0, help="upload limit, bytes/s (0: none)"
        )
        sub.add_argument(
            "--report-every", type=int, default=1024, help="receipts per report (and at stop)"
        )
        sub.add_argument("--report-seconds", type=float, default=60.0)
        sub.add_argument("--json", action="store_true", help="JSON status lines")
        sub.add_argument("-v", "--verbose", action="store_true")
    report = commands.add_parser("report", help="report the receipts kept in the box")
    _common(report)
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--key", help="BLS key file (python -m receipts.client keygen)")
    sub.add_argument("--site", help=f"the site's base URL (token from ${TOKEN_ENV})")
    sub.add_argument("--realm", help="realm id, 64 hex (instead of asking the site)")
    sub.add_argument("--box", default=DEFAULT_BOX, help=f"receipts box (default {DEFAULT_BOX})")
    sub.add_argument("--timeout", type=float, default=30.0, help="site requests, seconds")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # The signing process is forked first, while this process has one thread (docs: fork).
    signer = None
    if args.command == "download" and args.key and args.sign_process:
        signer = start_signer()
    try:
        if args.command == "report":
            return asyncio.run(run_report(args))
        return asyncio.run(run(args, signer))
    except Fatal as exc:
        print(json.dumps({"kind": "error", "message": str(exc)}), flush=True)
        return 1
    finally:
        if signer is not None:
            signer.shutdown(wait=True, cancel_futures=True)


def _identity(args: argparse.Namespace) -> tuple[Any, bytes, str, int]:
    """(key pair or None, realm, token, receipts per report) from the options."""
    token = os.environ.get(TOKEN_ENV, "")
    if not args.key:
        return None, b"", token, 4096
    try:
        keypair = load_key_file(Path(args.key).expanduser())
    except ClientError as exc:
        raise Fatal(exc.message) from None
    limit = 4096
    if args.realm:
        try:
            realm = bytes.fromhex(args.realm)
        except ValueError:
            realm = b""
        if len(realm) != 32:
            raise Fatal("--realm must be 64 hex digits")
    elif args.site:
        if not token:
            raise Fatal(f"--site needs the API token in ${TOKEN_ENV}")
        try:
            _, config = request_json(
                "GET",
                f"{args.site.rstrip('/')}/api/v1/receipts/config/",
                token=token,
                timeout=args.timeout,
            )
            realm = bytes.fromhex(config["realm_id"])
            limit = int(config.get("max_receipts_per_report", limit))
        except (ClientError, KeyError, TypeError, ValueError) as exc:
            raise Fatal(f"cannot get the realm from {args.site}: {exc}") from None
        _check_registered(args, token, keypair.pk_b64)
    else:
        raise Fatal("--key needs --site (or --realm)")
    return keypair, realm, token, limit


def _check_registered(args: argparse.Namespace, token: str, pk_b64: str) -> None:
    """Warn (not fail) when the key is not the member's active key at the site: receipts
    it signs or is named in would be refused there."""
    try:
        _, keys = request_json(
            "GET", f"{args.site.rstrip('/')}/api/v1/keys/", token=token, timeout=args.timeout
        )
        active = {k.get("public_key") for k in keys if isinstance(k, dict) and k.get("is_active")}
    except (ClientError, TypeError, AttributeError):
        return
    if pk_b64 not in active:
        message = (
            "this key is not your active key at the site: register it with"
            " python -m receipts.client register (receipts would be refused)"
        )
        print(json.dumps({"kind": "warning", "message": message}), flush=True)


async def run(args: argparse.Namespace, signer: concurrent.futures.Executor | None = None) -> int:
    """download or seed until done or signalled; ``signer``: the process that signs."""
    try:
        meta = load(args.torrent)
    except MetainfoError as exc:
        raise Fatal(f"{args.torrent}: {exc}") from None
    keypair, realm, token, limit = _identity(args)
    out = Output(json_lines=args.json or not sys.stdout.isatty())
    loop = asyncio.get_running_loop()
    try:
        storage = Storage(meta, Path(args.path), create=args.command == "download")
        have = await loop.run_in_executor(None, storage.recheck)
    except StorageError as exc:
        raise Fatal(str(exc)) from None
    if args.command == "seed" and not all(have):
        missing = len(have) - sum(have)
        storage.close()
        raise Fatal(f"{missing} of {len(have)} pieces are missing or damaged in {args.path}")
    box_path = Path(args.box).expanduser()
    box = reporter = journal = None
    exchange = None
    if keypair is not None:
        box = ReceiptBox(box_path)
        journal = Journal(journal_path(box_path))
        if args.site and token:
            reporter = Reporter(
                box_path,
                site=args.site,
                token=token,
                realm=realm,
                uploader_pk=keypair.pk,
                every=args.report_every,
                seconds=args.report_seconds,
                limit=limit,
                timeout=args.timeout,
                log=lambda message: logging.getLogger("receipts.peer").warning(message),
            )
        exchange = Exchange(
            meta,
            keypair,
            realm,
            box,
            on_kept=reporter.notify if reporter else lambda: None,
            signer=signer,
            journal=journal,
        )
        exchange.resume(have)  # receipts a killed run had not delivered
    announcer = Announcer([list(t) for t in meta.trackers]) if meta.trackers else None
    session = Session(
        meta,
        storage,
        have,
        exchange=exchange,
        announcer=announcer,
        bind=args.bind,
        port=args.port,
        max_peers=args.max_peers,
        upload_slots=args.upload_slots,
        pipeline=args.pipeline,
        upload_rate=args.upload_rate,
    )
    stop = asyncio.Event()
    reason = ["done"]

    def on_signal(name: str) -> None:
        reason[0] = name
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    await session.start()
    report_task = asyncio.create_task(reporter.run()) if reporter else None
    out.record("started", info_hash=meta.info_hash.hex(), port=session.port, pieces=sum(have))
    try:
        await _until_done(args, session, stop, out, reporter, box)
    finally:
        if report_task is not None:
            report_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await report_task
        await session.stop()
        reported = True
        if reporter is not None:
            reported = await reporter.final(deadline=time.monotonic() + FINAL_REPORT_SECONDS)
        summary = _summary(session, reporter, box)
        out.finish()
        out.record("exit", reason=reason[0], all_reported=reported, **summary)
        if reporter is not None:
            await loop.run_in_executor(None, reporter.close)
        if box is not None:
            box.close()
        if journal is not None:
            journal.close()
        storage.close()
    return 0


async def _until_done(
    args: argparse.Namespace,
    session: Session,
    stop: asyncio.Event,
    out: Output,
    reporter: Reporter | None,
    box: ReceiptBox | None,
) -> None:
    announced_complete = session.complete
    wake = asyncio.Event()
    session.on_complete = wake.set  # the "complete" record goes out at once
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, wake), timeout=1.0)
        if session.complete and not announced_complete:
            announced_complete = True
            elapsed = (session.completed_at or 0) - session.started_at
            out.record("complete", seconds=round(elapsed, 3), downloaded=session.downloaded)
            if wake.is_set():
                wake.clear()
                continue
        out.status(_summary(session, reporter, box))
        if args.command == "download" and session.complete and _seeded_enough(args, session):
            stop.set()


async def _first(*events: asyncio.Event) -> None:
    """Return when one of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _seeded_enough(args: argparse.Namespace, session: Session) -> bool:
    """--seed-ratio (uploaded / size) or --seed-time (s since completion) reached."""
    if (
        args.seed_ratio is not None
        and session.uploaded >= args.seed_ratio * session.meta.total_length
    ):
        return True
    since = time.monotonic() - (session.completed_at or time.monotonic())
    return args.seed_time is not None and since >= args.seed_time


def _summary(session: Session, reporter: Reporter | None, box: ReceiptBox | None) -> dict:
    status = session_status(session)
    if reporter is not None:
        status["receipts_reported"] = reporter.stats.sent
        status["receipts_accepted"] = reporter.stats.accepted
        status["receipts_site_refused"] = reporter.stats.refused
        status["report_failures"] = reporter.stats.failures
        status["report_error"] = reporter.stats.last_error
    if box is not None:
        status["box"] = box.counts()
    return status


async def run_report(args: argparse.Namespace) -> int:
    """Report what the box holds for this key and realm, then print the outcome."""
    keypair, realm, token, limit = _identity(args)
    if keypair is None or not args.site:
        raise Fatal("report needs --key and --site")
    reporter = Reporter(
        Path(args.box).expanduser(),
        site=args.site,
        token=token,
        realm=realm,
        uploader_pk=keypair.pk,
        limit=limit,
        timeout=args.timeout,
    )
    try:
        done = await reporter.final(deadline=time.monotonic() + FINAL_REPORT_SECONDS)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, reporter.close)
    stats = reporter.stats
    print(
        json.dumps(
            {
                "kind": "report",
                "all_reported": done,
                "reports": stats.reports,
                "receipts_reported": stats.sent,
                "receipts_accepted": stats.accepted,
                "receipts_site_refused": stats.refused,
                "refusals": stats.refusals,
                "error": stats.last_error,
            }
        ),
        flush=True,
    )
    return 0 if done else 1
