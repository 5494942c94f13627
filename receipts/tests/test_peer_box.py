"""The uploader's receipts box and its reports: a SIGKILLed process loses no committed receipt,
concurrent processes never claim the same receipt, a claim left by a dead process is taken
again; the reporter retries while the site is down, reports each receipt once, re-reports only
receipts refused with their aggregate's group; receipts.peer imports no Django."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from receipts import bls
from receipts import format as receipt_format
from receipts.models import Receipt as SiteReceipt
from receipts.models import Report
from receipts.peer.receipts_box import ReceiptBox
from receipts.peer.reporter import Reporter, read_reply, report_body
from receipts.services.verify import receipt_batch_verify
from receipts.site import site_realm
from receipts.tests.conftest import LAST_PIECE, PIECE, PIECES, Actor, make_actor, seen
from receipts.tests.peer_helpers import (
    BOX_REALM,
    BOX_UPLOADER,
    REPO,
    box_entry,
    peer_environment,
)
from reputation.models import Ledger
from tracker.services.members import member_api_token
from tracker.tests.realclients import free_port

REALM = BOX_REALM
UPLOADER_PK = BOX_UPLOADER[1]
OTHER_PK = bls.keygen(b"\x03" * 32)[1]
fake = box_entry


# --- the box ---------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from receipts.peer.receipts_box import ReceiptBox
    from receipts.tests.peer_helpers import box_entry as fake
    box = ReceiptBox(sys.argv[1])
    for i in range(100000):
        box.add([fake(i)])
        print(i, flush=True)
    """
)


def test_a_killed_process_loses_no_committed_receipt(tmp_path: Path):
    path = tmp_path / "box.sqlite3"
    env = peer_environment(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        committed = -1
        for line in proc.stdout:  # bounded: the writer stops at 100,000
            committed = int(line)
            if committed >= 200:
                break
        proc.send_signal(signal.SIGKILL)  # mid-transaction, most likely
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert committed >= 200
    box = ReceiptBox(path)
    try:
        for i in range(committed + 1):
            assert box.contains(fake(i)[0].receipt_id), i
        assert box.counts()["new"] >= committed + 1
    finally:
        box.close()


CLAIMER = textwrap.dedent(
    """
    import sys
    from receipts.peer.receipts_box import ReceiptBox
    from receipts.tests.peer_helpers import BOX_REALM as REALM, BOX_UPLOADER
    box = ReceiptBox(sys.argv[1])
    mine = []
    for _ in range(1000):
        batch = box.claim(REALM, BOX_UPLOADER[1], 7)
        if batch is None:
            break
        mine += [r.receipt_id.hex() for r in batch.receipts]
    print(" ".join(mine))
    """
)


def test_concurrent_processes_never_claim_the_same_receipt(tmp_path: Path):
    path = tmp_path / "box.sqlite3"
    box = ReceiptBox(path)
    assert box.add(fake(i) for i in range(300)) == 300
    assert box.add(fake(i) for i in range(10)) == 0  # kept once
    box.add([fake(1000, realm=b"\x08" * 32), fake(1001, uploader=OTHER_PK)])
    env = peer_environment(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path)], env=env, cwd=REPO, stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    claimed = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        claimed.append(out.decode().split())
    every = [rid for ids in claimed for rid in ids]
    assert len(every) == len(set(every)) == 300  # other realm / uploader left alone
    assert box.counts() == {"new": 2, "sending": 300, "reported": 0, "given_up": 0}
    box.close()


def test_claims_release_settle_and_stale_claims(tmp_path: Path):
    box = ReceiptBox(tmp_path / "box.sqlite3", stale_seconds=3600)
    box.add(fake(i) for i in range(5))
    first = box.claim(REALM, UPLOADER_PK, 3)
    assert first is not None and len(first.receipts) == 3
    assert box.claim(REALM, UPLOADER_PK, 10).receipts == tuple(
        r for r in box_rows(box, 3, 5)
    )  # the other two
    assert box.claim(REALM, UPLOADER_PK, 10) is None
    box.release(first.batch_id)
    again = box.claim(REALM, UPLOADER_PK, 10)
    assert again is not None and len(again.receipts) == 3
    ids = [r.receipt_id for r in again.receipts]
    box.settle(again.batch_id, "17", [(ids[0], "queued", "")], retry=ids[1:])
    assert box.counts() == {"new": 2, "sending": 2, "reported": 1, "given_up": 0}
    box.close()
    # A process died while sending: once stale, its claim is taken again.
    stale = ReceiptBox(tmp_path / "box.sqlite3", stale_seconds=0)
    time.sleep(0.01)
    batch = stale.claim(REALM, UPLOADER_PK, 10)
    assert batch is not None and len(batch.receipts) == 4
    stale.close()


def box_rows(box: ReceiptBox, start: int, end: int):
    batch_rows = []
    for i in range(start, end):
        receipt, data, sig = fake(i)
        from receipts.peer.receipts_box import Stored

        batch_rows.append(
            Stored(receipt.receipt_id, data, sig, receipt.info_hash, receipt.downloader_pk, 16384)
        )
    return batch_rows


def test_read_reply_settles_answered_receipts_and_requeues_group_refusals(tmp_path: Path):
    box = ReceiptBox(tmp_path / "box.sqlite3")
    box.add(fake(i) for i in range(5))
    batch = box.claim(REALM, UPLOADER_PK, 10)
    ids = [r.receipt_id.hex() for r in batch.receipts]
    body = report_body(batch)
    assert len(body["aggregates"]) == 1 and len(body["aggregates"][0]["receipts"]) == 5
    reply = {
        "id": 5,
        "aggregates": [
            {
                "receipts": [
                    {"receipt_id": ids[0], "status": "refused", "reason": "piece: out of range"},
                    {
                        "receipt_id": ids[1],
                        "status": "refused",
                        "reason": "aggregate: refused with its group because ...",
                    },
                    {"receipt_id": ids[2], "status": "queued", "reason": ""},
                    {
                        "receipt_id": ids[3],
                        "status": "refused",
                        "reason": "downloader: not seen in this torrent's swarm around that time",
                    },
                ]
            }
        ],
    }
    settled, retry, later = read_reply(batch, reply)
    assert [bytes.hex(s[0]) for s in settled] == [ids[0], ids[2]]
    assert [r.hex() for r in retry] == [ids[1], ids[4]]  # group refusal, and not answered
    assert [r.hex() for r in later] == [ids[3]]  # the tracker may record the downloader later
    box.settle(batch.batch_id, "5", settled, retry=retry, later=later)
    assert box.counts() == {"new": 3, "sending": 0, "reported": 2, "given_up": 0}
    assert box.pending(REALM, UPLOADER_PK) == 2  # the deferred one waits (30 s)
    assert len(box.waiting_ids(REALM, UPLOADER_PK)) == 3
    last = box.claim(REALM, UPLOADER_PK, 10, only=[bytes.fromhex(ids[3])])
    assert [r.receipt_id.hex() for r in last.receipts] == [ids[3]]
    box.close()


# --- reports to the live site ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reporter_retries_while_the_site_is_down_and_reports_each_receipt_once(
    live_server, settings, tmp_path: Path, swarm_actors
):
    uploader, downloader, torrent = swarm_actors
    settings.PBTS_BASE_URL = live_server.url
    realm = site_realm()
    box_path = tmp_path / "box.sqlite3"
    box = ReceiptBox(box_path)
    entries = [signed_receipt(uploader, downloader, torrent, i, realm) for i in range(PIECES)]
    # Piece 99 does not exist: the site refuses it, and its aggregate group with it.
    bad = receipt_format.Receipt(
        realm=realm,
        info_hash=bytes.fromhex(torrent.info_hash),
        piece_index=99,
        piece_length=PIECE,
        uploader_pk=uploader.pk,
        downloader_pk=downloader.pk,
        time_bucket=receipt_format.time_bucket(time.time()),
    )
    entries.append((bad, bad.to_bytes(), downloader.sign(bad.to_bytes())))
    assert box.add(entries) == PIECES + 1
    box.close()
    token = member_api_token(uploader.member)

    async def scenario():
        down = Reporter(
            box_path,
            site=f"http://127.0.0.1:{free_port()}",
            token=token,
            realm=realm,
            uploader_pk=uploader.pk,
            timeout=5,
        )
        assert not await down.final(deadline=time.monotonic() + 2.5)
        assert down.stats.failures >= 2 and down.stats.sent == 0
        assert "network" in down.stats.last_error
        down.close()
        up = Reporter(
            box_path, site=live_server.url, token=token, realm=realm, uploader_pk=uploader.pk
        )
        assert await up.final(deadline=time.monotonic() + 60)
        up.close()
        again = Reporter(
            box_path, site=live_server.url, token=token, realm=realm, uploader_pk=uploader.pk
        )
        assert await again.final(deadline=time.monotonic() + 60)
        again.close()
        return up.stats, again.stats

    import asyncio

    stats, again = asyncio.run(scenario())
    assert (stats.sent, stats.accepted, stats.refused) == (PIECES + 1, PIECES, 1), stats
    assert stats.reports == 2  # the group refused with piece 99 was sent once more
    assert again.sent == 0 and again.reports == 0
    receipt_batch_verify()
    rows = SiteReceipt.objects.filter(report__reporter=uploader.member)
    assert rows.filter(status="verified").count() == PIECES
    ids = [bytes(r.receipt_id) for r in rows.filter(status="verified")]
    assert len(ids) == len(set(ids))
    assert Report.objects.filter(reporter=uploader.member).count() == 2
    size = PIECE * (PIECES - 1) + LAST_PIECE
    assert Ledger.objects.get(member=uploader.member).verified_uploaded == size
    box = ReceiptBox(box_path)
    assert box.counts() == {"new": 0, "sending": 0, "reported": PIECES + 1, "given_up": 0}
    assert box.site_statuses().get("refused") == 1
    box.close()


@pytest.mark.django_db(transaction=True)
def test_receipts_refused_for_now_are_reported_again_later(live_server, settings, tmp_path: Path):
    """The site refuses receipts of a downloader its tracker has not recorded in the swarm yet;
    the reporter keeps them and reports them again (here: the last chance at stop) once the
    statistics flush has seen the downloader."""
    from tracker.tests.torrents import upload_torrent

    settings.PBTS_BASE_URL = live_server.url
    uploader, downloader = make_actor(), make_actor()
    torrent = upload_torrent(
        uploader.member, size=PIECE * (PIECES - 1) + LAST_PIECE, piece_length=PIECE
    )
    seen(uploader.member, torrent)
    box_path = tmp_path / "box.sqlite3"
    box = ReceiptBox(box_path)
    box.add(signed_receipt(uploader, downloader, torrent, i, site_realm()) for i in range(3))
    token = member_api_token(uploader.member)

    async def report() -> tuple[bool, object]:
        reporter = Reporter(
            box_path, site=live_server.url, token=token, realm=site_realm(), uploader_pk=uploader.pk
        )
        try:
            return await reporter.final(deadline=time.monotonic() + 60), reporter.stats
        finally:
            reporter.close()

    import asyncio

    done, stats = asyncio.run(report())
    assert not done and stats.deferred == 6 and stats.sent == 0  # twice: due, last chance
    assert box.counts()["new"] == 3 and box.pending(site_realm(), uploader.pk) == 0
    seen(downloader.member, torrent)
    done, stats = asyncio.run(report())
    assert done and (stats.sent, stats.accepted, stats.deferred) == (3, 3, 0)
    assert box.counts() == {"new": 0, "sending": 0, "reported": 3, "given_up": 0}
    box.close()


@pytest.fixture
def swarm_actors(db):
    uploader, downloader = make_actor(), make_actor()
    from tracker.tests.torrents import upload_torrent

    torrent = upload_torrent(
        uploader.member, size=PIECE * (PIECES - 1) + LAST_PIECE, piece_length=PIECE
    )
    seen(downloader.member, torrent)
    seen(uploader.member, torrent)
    return uploader, downloader, torrent


def signed_receipt(uploader: Actor, downloader: Actor, torrent, index: int, realm: bytes):
    receipt = receipt_format.Receipt(
        realm=realm,
        info_hash=bytes.fromhex(torrent.info_hash),
        piece_index=index,
        piece_length=LAST_PIECE if index == PIECES - 1 else PIECE,
        uploader_pk=uploader.pk,
        downloader_pk=downloader.pk,
        time_bucket=receipt_format.time_bucket(time.time()),
    )
    data = receipt.to_bytes()
    return receipt, data, downloader.sign(data)


# --- no Django -------------------------------------------------------------------------------

BLOCKED = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("django", "rest_framework", "celery"):
                raise ImportError("blocked: " + name)
            return None

    sys.meta_path.insert(0, Block())
    import receipts.peer
    names = [m.name for m in pkgutil.iter_modules(receipts.peer.__path__, "receipts.peer.")]
    for name in names:
        if name != "receipts.peer.__main__":
            importlib.import_module(name)
    assert len(names) >= 12, names
    from receipts.peer.cli import main
    try:
        main(["download", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    print("ok", len(names))
    """
)


def test_the_peer_imports_and_runs_with_django_blocked(tmp_path: Path):
    env = {k: v for k, v in peer_environment(tmp_path).items()}
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("ok")
    assert os.path.exists(REPO / "receipts" / "peer" / "__main__.py")
