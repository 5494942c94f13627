"""A mixed swarm on 127.0.0.1 through the live site (issue 13, part 4): a PBTS seeder, a
libtorrent leecher, an aria2 leecher, then a PBTS leecher.

1. libtorrent and aria2 download from the PBTS seeder (and from each other): both complete,
   their files hash right. They speak plain BitTorrent (no ``pbts_receipt``): no receipt is
   signed for them or by them, and nobody earns a strike.
2. The PBTS leecher joins once the standard clients have everything. Every source's upload is
   limited (the PBTS seeder's ``--upload-rate``, libtorrent's per-torrent ``upload_limit``,
   aria2's ``--max-upload-limit``) and the leecher keeps few requests in flight per peer
   (``--pipeline``), so it gets pieces from all three: libtorrent's and aria2's upload
   counters (aria2's through its JSON-RPC interface) grow by at least what they served it.
3. Every piece comes whole from one peer, and the PBTS leecher signs a receipt only for pieces
   from the PBTS seeder: the seeder's box holds exactly those (one each, naming the two PBTS
   keys), the rest of the pieces came from libtorrent and aria2, and once reported and verified
   the seeder's verified upload and the leecher's verified download are exactly those pieces'
   bytes (less than the torrent: the standard clients' share earns nobody verified credit).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from pathlib import Path

import pytest

from receipts.client import load_key_file
from receipts.models import Receipt
from receipts.peer import metainfo
from receipts.services.verify import receipt_batch_verify
from receipts.tests.peer_helpers import PbtsPeer, write_files
from receipts.tests.swarm_helpers import (
    Site,
    box_path,
    box_rows,
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
    workdir,
)
from reputation.models import Ledger
from tracker.tests.factories import MemberFactory
from tracker.tests.realclients import Aria2Client, LibtorrentClient, free_port, sha256_file

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

PIECE = 32 * 1024
FILES = [("a.bin", 2_000_000), ("b/c.bin", 1_145_728)]
SIZE = sum(size for _, size in FILES)
RATE = 1024 * 1024
"""Every source's upload limit (bytes/s): the PBTS leecher, which asks each peer for a few
pieces at a time, then gets pieces from all three (unthrottled on loopback, one of them would
serve the whole torrent in a fraction of a second before the others are even connected)."""
TIMEOUT = 120.0


@pytest.fixture
def site(live_server, settings, monkeypatch):
    with live_site(live_server, settings, monkeypatch) as value:
        yield value


@pytest.fixture
def launch():
    with launcher() as start:
        yield start


class SlowLibtorrent(LibtorrentClient):
    """libtorrent with the torrent's upload limited to :data:`RATE` (``upload_limit``: a
    session limit would not hold for peers on the local network)."""

    def command(self) -> list[str]:
        command = super().command()
        script = self.script.read_text()
        limited = script.replace(
            "params.save_path = save_path\n",
            f"params.save_path = save_path\nparams.upload_limit = {RATE}\n",
        )
        assert limited != script
        self.script.write_text(limited)
        return command


class Aria2Rpc(Aria2Client):
    """aria2 with its upload limited to :data:`RATE` and its JSON-RPC interface on 127.0.0.1
    (for its upload counter)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rpc_port = free_port()

    def command(self) -> list[str]:
        command = super().command()
        flags = ["--enable-rpc=true", f"--rpc-listen-port={self.rpc_port}"]
        flags += ["--rpc-listen-all=false", f"--max-upload-limit={RATE}"]
        return [*command[:-1], *flags, command[-1]]

    def uploaded(self) -> int:
        """Bytes aria2 uploaded for the torrent (``uploadLength`` of its active download)."""
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": "t",
                "method": "aria2.tellActive",
                "params": [["uploadLength"]],
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}/jsonrpc",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            active = json.loads(response.read())["result"]
        return sum(int(d["uploadLength"]) for d in active)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_mixed_swarm_standard_clients_and_pbts_peers(site: Site, launch, tmp_path: Path):
    began = time.monotonic()
    seeder = pbts_member(site.url, tmp_path)
    leecher = pbts_member(site.url, tmp_path)
    lt_member, aria_member = MemberFactory(), MemberFactory()
    files = random_files(31, FILES)
    torrent = upload(seeder.member, files, name="mixed", piece=PIECE)
    seed_file = member_torrent(tmp_path, torrent, seeder.member, "seeder")
    meta = metainfo.load(seed_file)
    pieces = meta.piece_count

    seed = PbtsPeer(
        command="seed",
        torrent=seed_file,
        workdir=workdir(tmp_path, "seeder"),
        extra=receipt_options(site.url, seeder, "--upload-rate", str(RATE)),
        token=seeder.token,
    )
    write_files(seed.download_dir, "mixed", files, single=False)
    launch(seed)
    seed.wait_seeding(timeout=60)

    # 1. The standard clients complete from the PBTS seeder (and from each other).
    lt = SlowLibtorrent(
        torrent=member_torrent(tmp_path, torrent, lt_member, "libtorrent"),
        workdir=workdir(tmp_path, "libtorrent"),
    )
    aria = Aria2Rpc(
        torrent=member_torrent(tmp_path, torrent, aria_member, "aria2"),
        workdir=workdir(tmp_path, "aria2"),
    )
    launch(lt)
    launch(aria)
    lt.wait_complete(timeout=TIMEOUT)
    aria.wait_complete(timeout=TIMEOUT)
    phase1 = time.monotonic() - began
    for client in (lt, aria):
        for path, data in files:
            got = client.download_dir / "mixed" / path
            assert sha256_file(got) == digest(data), f"{client.name}: {path}"
    wait_for(lambda: seed.last("status").get("uploaded", 0) > 0, "seeder status", 10, seed)
    served_standard = seed.last("status")["uploaded"]
    lt_before = lt.last_status()["payload_upload"]
    aria_before = aria.uploaded()

    # 2. The PBTS leecher gets pieces from all three.
    leech = PbtsPeer(
        command="download",
        torrent=member_torrent(tmp_path, torrent, leecher.member, "leecher"),
        workdir=workdir(tmp_path, "leecher"),
        extra=[*receipt_options(site.url, leecher), "--seed-ratio", "0", "--pipeline", "16"],
        token=leecher.token,
    )
    launch(leech)
    done = leech.wait_exit(timeout=TIMEOUT)
    context = f"{site.announces.dump()}\n{leech.describe()}\n{seed.describe()}"
    assert done["reason"] == "done" and done["left"] == 0, context
    leech_seconds = leech.last("complete")["seconds"]
    for path, data in files:
        assert digest((leech.download_dir / "mixed" / path).read_bytes()) == digest(data), path

    def lt_to_pbts() -> int:
        return lt.last_status()["payload_upload"] - lt_before

    def aria_to_pbts() -> int:
        return aria.uploaded() - aria_before

    # 3. Receipts only for the PBTS seeder's pieces, each once, exactly credited.
    signed = done["receipts_signed"]
    wait_for(lambda: seed.last("status").get("receipts_received") == signed, "receipts", 30, seed)
    assert runtime_module.flush_now()
    seed.stop()
    final = seed.last("exit")
    context = f"{site.announces.dump()}\n{seed.describe()}"
    assert final["all_reported"] and final["receipts_accepted"] == signed, context
    assert final["strikes"] == {} and final["receipts_refused"] == 0, context
    assert done["strikes"] == {} and done["receipts_acked"] == signed, context
    receipt_batch_verify()
    kept = [r for r, _, _ in box_rows(box_path(seed))]
    seeder_pk, leecher_pk = load_key_file(seeder.key).pk, load_key_file(leecher.key).pk
    assert {(r.uploader_pk, r.downloader_pk) for r in kept} == {(seeder_pk, leecher_pk)}
    counts = pieces_once(kept)
    assert set(counts.values()) == {1} and len(kept) == signed
    from_seeder = sum(r.piece_length for r in kept)
    from_standard = SIZE - from_seeder
    assert 0 < signed < pieces, (signed, pieces)  # some from the PBTS seeder, some not
    # The standard clients sent the PBTS leecher at least the pieces it has from them (their
    # counters are read live: libtorrent's every 0.25 s).
    wait_for(
        lambda: (
            lt_to_pbts() > 0
            and aria_to_pbts() > 0
            and lt_to_pbts() + aria_to_pbts() >= from_standard
        ),
        f"libtorrent and aria2 served {from_standard} B to the PBTS leecher",
        10,
        lt,
        aria,
        leech,
        site.announces.dump(),
    )
    lt_sent, aria_sent = lt_to_pbts(), aria_to_pbts()
    assert served_standard > 0  # phase 1: the PBTS seeder served the standard clients

    s_ledger = Ledger.objects.get(member=seeder.member)
    l_ledger = Ledger.objects.get(member=leecher.member)
    assert (s_ledger.verified_uploaded, s_ledger.verified_downloaded) == (from_seeder, 0)
    assert (l_ledger.verified_uploaded, l_ledger.verified_downloaded) == (0, from_seeder)
    for member in (lt_member, aria_member):
        ledger = Ledger.objects.get(member=member)
        assert (ledger.verified_uploaded, ledger.verified_downloaded) == (0, 0)
    rows = Receipt.objects.all()
    assert rows.count() == signed == rows.filter(status="verified", is_credited=True).count()
    assert set(rows.values_list("uploader", "downloader")) == {
        (seeder.member.pk, leecher.member.pk)
    }
    assert sorted(rows.values_list("piece_index", flat=True)) == sorted(counts)
    print(
        f"mixed: {pieces} pieces of {PIECE} B, {SIZE} B; standard clients complete in"
        f" {phase1:.1f} s (PBTS seeder served them {served_standard} B); PBTS leecher:"
        f" {signed} pieces ({from_seeder} B) from the PBTS seeder with receipts,"
        f" {pieces - signed} ({from_standard} B) from libtorrent ({lt_sent} B sent)"
        f" and aria2 ({aria_sent} B sent) without, in {leech_seconds} s;"
        f" total {time.monotonic() - began:.1f} s"
    )
