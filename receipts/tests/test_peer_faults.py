"""Faults during a PBTS transfer on 127.0.0.1 (issue 13, part 4): a peer killed with SIGKILL
mid-transfer and started again, and the site down for a minute while the transfer runs and
the seeder reports. In every case each piece ends up with exactly one receipt in the seeder's
box, the site holds and credits each receipt once, and the verified figures are exactly the
torrent's size: nothing is lost, nothing is counted twice.

The seeder is slowed down (``--upload-rate``) so that a transfer of a few MiB lasts long
enough to be interrupted.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from receipts.client import load_key_file
from receipts.models import Receipt
from receipts.peer import metainfo
from receipts.services.verify import receipt_batch_verify
from receipts.tests.peer_helpers import PbtsPeer, write_files
from receipts.tests.swarm_helpers import (
    Flusher,
    PbtsMember,
    RunServer,
    Site,
    again,
    box_path,
    box_rows,
    kill9,
    launcher,
    live_site,
    member_torrent,
    pbts_member,
    pieces_once,
    random_files,
    receipt_options,
    runtime_module,
    upload,
    wait_for,
    whitelist,
    workdir,
)
from reputation.models import Ledger

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

PIECE = 32 * 1024
FILES = [("a.bin", 3_000_000), ("b.bin", 1_194_304)]
SIZE = sum(size for _, size in FILES)  # 4 MiB: 128 pieces
RATE = 512 * 1024
"""The seeder's upload limit in the SIGKILL tests (bytes/s): about 8 s for the torrent."""
SITE_DOWN_SECONDS = 60.0
"""How long the site stays down in the site-down test (the issue asks for a minute)."""
SLOW_RATE = 96 * 1024
"""The seeder's upload limit in the site-down test: the transfer outlasts the first reports
and goes on for a while once the site is down (about 45 s for the torrent)."""
TIMEOUT = 120.0


@pytest.fixture
def site(live_server, settings, monkeypatch):
    with live_site(live_server, settings, monkeypatch) as value:
        yield value


@pytest.fixture
def launch():
    with launcher() as start:
        yield start


def swarm(site_url: str, tmp_path: Path, seed: int):
    """A seeder and a leecher with registered keys, and a torrent of the seeder's."""
    seeder = pbts_member(site_url, tmp_path)
    leecher = pbts_member(site_url, tmp_path)
    files = random_files(seed, FILES)
    torrent = upload(seeder.member, files, name="faults", piece=PIECE)
    return seeder, leecher, files, torrent


def seeder_peer(
    tmp_path: Path, site_url: str, who: PbtsMember, torrent, files, *options: str
) -> PbtsPeer:
    peer = PbtsPeer(
        command="seed",
        torrent=member_torrent(tmp_path, torrent, who.member, "seeder"),
        workdir=workdir(tmp_path, "seeder"),
        extra=receipt_options(site_url, who, *options),
        token=who.token,
    )
    write_files(peer.download_dir, "faults", files, single=False)
    return peer


def leecher_peer(tmp_path: Path, site_url: str, who: PbtsMember, torrent) -> PbtsPeer:
    return PbtsPeer(
        command="download",
        torrent=member_torrent(tmp_path, torrent, who.member, "leecher"),
        workdir=workdir(tmp_path, "leecher"),
        extra=[*receipt_options(site_url, who), "--seed-ratio", "0"],
        token=who.token,
    )


def status(peer: PbtsPeer, field: str, default=0):
    return peer.last("status").get(field, default)


def check_data(leech: PbtsPeer, files) -> None:
    for path, data in files:
        assert (leech.download_dir / "faults" / path).read_bytes() == data, path


DUPLICATE = "duplicate: already reported"
WITH_GROUP = "aggregate: refused with its group"


def check_box_and_credit(
    seed: PbtsPeer, seeder: PbtsMember, leecher: PbtsMember, pieces: int
) -> Counter[str]:
    """One receipt per piece in the seeder's box, all reported; the site holds each receipt
    once, verified and credited; the ledgers hold exactly the torrent's size. Returns the
    reasons of the receipts the site refused (a receipt reported again after a report whose
    answer was lost is refused as a duplicate, with the rest of its aggregate)."""
    rows = box_rows(box_path(seed))
    counts = pieces_once([r for r, _, _ in rows])
    missing = sorted(set(range(pieces)) - set(counts))
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not missing and not twice, f"missing {missing}, twice {twice}\n{seed.describe()}"
    keys = (load_key_file(seeder.key).pk, load_key_file(leecher.key).pk)
    assert {(r.uploader_pk, r.downloader_pk) for r, _, _ in rows} == {keys}
    assert {state for _, state, _ in rows} == {"reported"}, seed.describe()
    receipt_batch_verify()
    site_rows = Receipt.objects.filter(report__reporter=seeder.member)
    credited = site_rows.filter(status="verified", is_credited=True)
    assert credited.count() == pieces == credited.values("receipt_id").distinct().count()
    assert sorted(credited.values_list("piece_index", flat=True)) == list(range(pieces))
    assert not site_rows.filter(status="queued").exists()
    s_ledger = Ledger.objects.get(member=seeder.member)
    l_ledger = Ledger.objects.get(member=leecher.member)
    assert (s_ledger.verified_uploaded, s_ledger.verified_downloaded) == (SIZE, 0)
    assert (l_ledger.verified_uploaded, l_ledger.verified_downloaded) == (0, SIZE)
    refused = Counter(
        reason.split(" because")[0].split(" (")[0]
        for reason in site_rows.filter(status="refused").values_list("reason", flat=True)
    )
    assert set(refused) <= {DUPLICATE, WITH_GROUP}, refused
    return refused


def test_leecher_killed_mid_transfer_resumes_and_no_receipt_is_lost_or_doubled(
    site: Site, launch, tmp_path: Path
):
    began = time.monotonic()
    seeder, leecher, files, torrent = swarm(site.url, tmp_path, 51)
    seed = seeder_peer(tmp_path, site.url, seeder, torrent, files, "--upload-rate", str(RATE))
    launch(seed)
    seed.wait_seeding(timeout=60)
    pieces = metainfo.load(seed.torrent).piece_count
    leech = launch(leecher_peer(tmp_path, site.url, leecher, torrent))

    # Some pieces and some receipts in, far from the end: SIGKILL (the peer and its signer).
    wait_for(
        lambda: status(seed, "receipts_received") >= 32 and status(leech, "pieces") >= 40,
        "pieces and receipts before the kill",
        TIMEOUT,
        leech,
        seed,
    )
    before = leech.last("status")
    assert before["pieces"] < pieces - 16, before
    kill9(leech)
    killed_at = time.monotonic()
    time.sleep(1.0)  # what was on its way to the seeder has arrived
    kept_then = len(box_rows(box_path(seed)))

    # Restarted on the same directory, key and box: it rechecks, keeps what it has, completes.
    resumed = launch(again(leech, 2))
    done = resumed.wait_exit(timeout=TIMEOUT)
    context = f"{site.announces.dump()}\n{resumed.describe()}\n{seed.describe()}"
    started = next(r for r in resumed.records() if r["kind"] == "started")
    assert before["pieces"] <= started["pieces"] < pieces, (before, started)
    assert done["reason"] == "done" and done["left"] == 0, context
    # The receipts the killed run had not delivered are sent again (journaled): at least
    # those of the pieces on disk that the seeder lacked.
    assert done["receipts_resumed"] >= started["pieces"] - kept_then, context
    assert done["receipts_acked"] == done["receipts_signed"] + done["receipts_resumed"], context
    assert done["receipts_nacked"] == 0, context
    assert done["downloaded"] <= SIZE - started["pieces"] * PIECE + 16 * PIECE, context
    check_data(resumed, files)

    # Every piece's receipt reached the seeder once, however the kill cut the exchange.
    wait_for(
        lambda: (
            len(box_rows(box_path(seed))) >= pieces
            and status(seed, "receipts_received") == len(box_rows(box_path(seed)))
        ),
        "a receipt for every piece in the seeder's box",
        30,
        seed,
        resumed,
    )
    assert runtime_module.flush_now()
    seed.stop()
    final = seed.last("exit")
    assert final["all_reported"] and final["receipts_accepted"] == pieces, seed.describe()
    assert final["receipts_refused"] == 0 and final["strikes"] == {}, seed.describe()
    assert check_box_and_credit(seed, seeder, leecher, pieces) == {}
    print(
        f"leecher SIGKILL: {pieces} pieces; killed at {before['pieces']} pieces, the seeder"
        f" holding {kept_then} receipts; restarted with {started['pieces']} pieces on disk, it"
        f" sent {done['receipts_resumed']} journaled receipts again"
        f" ({final['receipts_duplicates']} the seeder had already) and completed"
        f" {time.monotonic() - killed_at:.1f} s after the kill;"
        f" {pieces} receipts, {SIZE} B verified; total {time.monotonic() - began:.1f} s"
    )


def test_seeder_killed_mid_transfer_keeps_its_receipts_and_nothing_is_lost_or_doubled(
    site: Site, launch, tmp_path: Path
):
    began = time.monotonic()
    seeder, leecher, files, torrent = swarm(site.url, tmp_path, 52)
    with Flusher():  # the site records both members in the swarm as they announce
        seed = seeder_peer(
            tmp_path,
            site.url,
            seeder,
            torrent,
            files,
            *("--upload-rate", str(RATE), "--report-every", "16", "--report-seconds", "1"),
        )
        launch(seed)
        seed.wait_seeding(timeout=60)
        pieces = metainfo.load(seed.torrent).piece_count
        leech = launch(leecher_peer(tmp_path, site.url, leecher, torrent))

        # Receipts kept and some reported, far from the end: SIGKILL.
        wait_for(
            lambda: status(seed, "receipts_reported") >= 16 and status(leech, "pieces") >= 40,
            "receipts kept and reported before the kill",
            TIMEOUT,
            leech,
            seed,
        )
        kill9(seed)
        killed_at = time.monotonic()
        # Whatever the leecher saw acknowledged is on the seeder's disk.
        time.sleep(1.5)  # the leecher's next status line
        acked = status(leech, "receipts_acked")
        unacked = status(leech, "receipts_signed") - acked  # the second run must take these
        kept = box_rows(box_path(seed))
        reported = {r.receipt_id for r, state, _ in kept if state == "reported"}
        sending = sum(1 for _, state, _ in kept if state == "sending")  # a report cut short
        assert len(kept) >= acked > 0, (len(kept), acked)
        assert status(leech, "pieces") < pieces, leech.describe()

        # Restarted on the same data, box and port: the leecher completes from it.
        restarted = launch(again(seed, 2))
        restarted.wait_seeding(timeout=60)
        done = leech.wait_exit(timeout=TIMEOUT)
        context = f"{site.announces.dump()}\n{leech.describe()}\n{restarted.describe()}"
        assert done["reason"] == "done" and done["left"] == 0, context
        # The receipts the first run had not acknowledged are taken by the second (it knows
        # it served those pieces): none refused, every one acknowledged.
        assert done["receipts_nacked"] == 0, context
        assert done["receipts_acked"] == done["receipts_signed"] == pieces, context
        check_data(leech, files)
        wait_for(
            lambda: len(box_rows(box_path(seed))) >= pieces,
            "a receipt for every piece in the seeder's box",
            30,
            restarted,
            leech,
        )
    restarted.stop()
    final = restarted.last("exit")
    assert final["all_reported"], restarted.describe()
    assert final["receipts_refused"] == 0 and final["strikes"] == {}, restarted.describe()
    # What the first run reported was not reported again by the second; a report the kill
    # cut short is sent again at once (the site refuses what it had as a duplicate).
    again_reported = final["receipts_reported"]
    assert again_reported == pieces - len(reported), (again_reported, len(reported))
    refused = check_box_and_credit(restarted, seeder, leecher, pieces)
    assert refused[DUPLICATE] <= sending, (refused, sending)
    assert final["receipts_site_refused"] == refused[DUPLICATE], (final, refused)
    print(
        f"seeder SIGKILL: {pieces} pieces; killed with {len(kept)} receipts on disk"
        f" ({acked} acknowledged to the leecher, {len(reported)} reported, {sending} in a"
        f" report cut short), restarted: it took {final['receipts_received']} receipts"
        f" ({unacked} of them signed before the kill and not acknowledged), the leecher"
        f" completed {time.monotonic() - killed_at:.1f} s after the kill; the second run reported"
        f" {again_reported} ({refused[DUPLICATE]} duplicates); {SIZE} B verified; total"
        f" {time.monotonic() - began:.1f} s"
    )


def test_site_down_for_a_minute_every_receipt_lands_once(settings, launch, tmp_path: Path):
    """The site is a ``manage.py runserver`` process: stopped (connections refused) for
    :data:`SITE_DOWN_SECONDS` while the transfer runs and the seeder tries to report, then
    started again on the same port."""
    began = time.monotonic()
    server = RunServer(settings, tmp_path)
    settings.PBTS_BASE_URL = server.url  # the realm and the .torrent files' announce URLs
    settings.PBTS_UDP_PORT = 0
    whitelist()
    server.start()
    try:
        seeder, leecher, files, torrent = swarm(server.url, tmp_path, 53)
        options = ("--upload-rate", str(SLOW_RATE), "--report-every", "8")
        seed = seeder_peer(
            tmp_path, server.url, seeder, torrent, files, *options, "--report-seconds", "1"
        )
        launch(seed)
        seed.wait_seeding(timeout=60)
        pieces = metainfo.load(seed.torrent).piece_count
        leech = launch(leecher_peer(tmp_path, server.url, leecher, torrent))
        landed = Receipt.objects.filter(report__reporter=seeder.member)

        def answered() -> bool:
            """Some receipts landed and the seeder has every answer (no report in flight: a
            report the stop cut off after the site's commit would be refused as a duplicate
            when sent again, see check_box_and_credit)."""
            states = Counter(state for _, state, _ in box_rows(box_path(seed)))
            return states["sending"] == 0 and states["reported"] == landed.count() >= 8

        wait_for(answered, "the first reports", TIMEOUT, seed, leech, server)

        server.stop()  # down: every request is refused
        down_at = time.monotonic()
        before = landed.count()
        pieces_then = status(leech, "pieces")
        assert pieces_then < pieces - 32, "the transfer must go on while the site is down"
        wait_for(
            lambda: status(seed, "report_failures") >= 2,
            "reports attempted and retried while the site is down",
            SITE_DOWN_SECONDS,
            seed,
        )
        done = leech.wait_exit(timeout=TIMEOUT)
        assert done["left"] == 0, leech.describe()
        check_data(leech, files)
        completed_down = time.monotonic() - down_at
        failures = status(seed, "report_failures")
        error = status(seed, "report_error", "")
        time.sleep(max(0.0, SITE_DOWN_SECONDS - (time.monotonic() - down_at)))
        assert landed.count() == before  # nothing got through while down
        server.start()  # back, on the same port and database
        up_at = time.monotonic()
        wait_for(
            lambda: status(seed, "box", {}).get("reported") == pieces,
            "every receipt reported once the site is back",
            TIMEOUT,
            seed,
            server,
        )
        caught_up = time.monotonic() - up_at
        seed.stop()
        final = seed.last("exit")
        assert final["all_reported"], seed.describe()
        # A report whose answer the stop cut off may have landed: sent again, it is refused
        # as a duplicate (none is expected: the site is stopped between reports).
        refused = check_box_and_credit(seed, seeder, leecher, pieces)
        assert final["receipts_site_refused"] == refused[DUPLICATE], (final, refused)
        assert final["receipts_accepted"] + refused[DUPLICATE] == pieces, seed.describe()
    finally:
        server.stop()
    print(
        f"site down: {pieces} pieces at {SLOW_RATE} B/s; {before} receipts landed before the"
        f" site went down (the leecher had {pieces_then} pieces); down"
        f" {SITE_DOWN_SECONDS:.0f} s, the leecher completed {completed_down:.1f} s into it;"
        f" {failures} failed reports ({error});"
        f" all {pieces} landed {caught_up:.1f} s after the site came back, once each"
        f" ({refused[DUPLICATE]} refused as duplicates);"
        f" total {time.monotonic() - began:.1f} s"
    )
