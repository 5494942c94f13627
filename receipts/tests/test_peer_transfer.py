"""The PBTS peer end to end on 127.0.0.1: two members run ``python -m receipts.peer`` (a seeder
and a leecher, separate processes, no Django in them) against the live site, which is both the
tracker (they find each other only through its announces) and the receipts API. The file
arrives intact; every piece's receipt goes over the pbts_receipt extension into the seeder's
box on disk; at its stop the seeder reports them; after verification the seeder's verified
upload is exactly the bytes it served and the leecher's verified download the torrent's size.

A mixed swarm shows standard clients work with the PBTS peer (libtorrent leeching from it and
seeding to it: plain BitTorrent, no receipts).
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from receipts import client
from receipts.models import Receipt
from receipts.peer import metainfo
from receipts.services.verify import receipt_batch_verify
from receipts.tests.peer_helpers import PbtsPeer, make_torrent, peer_environment, write_files
from reputation.models import Ledger
from tracker import announce_views
from tracker.models import ClientPrefix, Member, Torrent, TorrentHistory
from tracker.services.members import member_api_token
from tracker.services.torrents import torrent_download, torrent_upload
from tracker.tests.factories import MemberFactory
from tracker.tests.realclients import (
    LibtorrentClient,
    only_tracker_urls,
    sha256_file,
    stop_all,
    wait_until,
)
from tracker.tests.test_realclients import AnnounceRecorder
from tracker.tests.trackerd_helpers import running_trackerd

try:  # the announce runtime's module (renamed from tracker.tracking)
    from tracker import announce_runtime as runtime_module
except ImportError:  # pragma: no cover - the older layout
    from tracker import tracking as runtime_module  # type: ignore[no-redef]

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

PIECE = 64 * 1024
FILES = [("a.bin", 1_500_000), ("empty.txt", 0), ("sub/b.bin", 700_001)]
SIZE = sum(size for _, size in FILES)
TIMEOUT = 120.0


@dataclass
class Site:
    url: str
    announces: AnnounceRecorder


@pytest.fixture
def site(live_server, settings, monkeypatch) -> Site:
    """The live site on 127.0.0.1 as tracker (HTTP announces; fresh in-process peer store)
    and receipts API; the PBTS peer's peer_id prefix is whitelisted."""
    host, port = live_server.thread.httpd.server_address[:2]
    assert host == "127.0.0.1"
    settings.PBTS_BASE_URL = f"http://127.0.0.1:{port}"
    settings.PBTS_UDP_PORT = 0
    monkeypatch.setattr(runtime_module, "_runtime", runtime_module.build_runtime(redis_url=""))
    recorder = AnnounceRecorder(announce_views.handle_announce)
    monkeypatch.setattr(announce_views, "handle_announce", recorder)
    runtime_module.policy.cache_clear()
    for prefix, name in (("-PB0", "PBTS peer"), ("-LT20", "libtorrent")):
        ClientPrefix.objects.update_or_create(
            prefix=prefix, defaults={"name": name, "is_allowed": True}
        )
    try:
        yield Site(settings.PBTS_BASE_URL, recorder)
    finally:
        runtime_module.policy.cache_clear()


@pytest.fixture
def launch():
    """Start peer processes; every one is stopped at teardown, pass or fail."""
    started = []

    def start(process):
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        stop_all(started)


def content(seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    return [(path, rng.randbytes(size)) for path, size in FILES]


def member_torrent(tmp_path: Path, torrent: Torrent, member: Member, role: str) -> Path:
    path = tmp_path / f"{role}.torrent"
    path.write_bytes(torrent_download(torrent=torrent, member=member))
    return path


def workdir(tmp_path: Path, role: str) -> Path:
    path = tmp_path / role
    path.mkdir()
    return path


def receipt_options(site: Site, key: Path) -> list[str]:
    # Report only at stop (after the tracker's statistics flush has seen the leecher).
    return ["--key", str(key), "--site", site.url, "--report-every", "1000000"]


def test_two_pbts_peers_transfer_exchange_receipts_and_get_verified_credit(
    site: Site, launch, tmp_path: Path
):
    seeder, leecher = MemberFactory(), MemberFactory()
    tokens = {m.pk: member_api_token(m) for m in (seeder, leecher)}
    keys = {}
    for member in (seeder, leecher):
        keys[member.pk] = tmp_path / f"{member.username}.key"
        pair = client.create_key_file(keys[member.pk])
        assert client.register(site.url, tokens[member.pk], pair, timeout=60)[0] == 201
    files = content(13)
    torrent = torrent_upload(
        uploader=seeder, data=make_torrent(files, name="pbts-e2e", piece_length=PIECE)
    )
    assert torrent.status == "approved"
    seed_torrent = member_torrent(tmp_path, torrent, seeder, "seeder")
    meta = metainfo.load(seed_torrent)
    assert meta.info_hash.hex() == torrent.info_hash and meta.total_length == SIZE
    pieces = meta.piece_count

    seed = PbtsPeer(
        command="seed",
        torrent=seed_torrent,
        workdir=workdir(tmp_path, "seeder"),
        extra=receipt_options(site, keys[seeder.pk]),
        token=tokens[seeder.pk],
    )
    write_files(seed.download_dir, "pbts-e2e", files, single=False)
    launch(seed)
    seed.wait_seeding(timeout=60)
    assert wait_until(lambda: "started" in site.announces.events(seeder), timeout=30)

    leech = PbtsPeer(
        command="download",
        torrent=member_torrent(tmp_path, torrent, leecher, "leecher"),
        workdir=workdir(tmp_path, "leecher"),
        extra=[*receipt_options(site, keys[leecher.pk]), "--seed-ratio", "0"],
        token=tokens[leecher.pk],
    )
    launch(leech)
    done = leech.wait_exit(timeout=TIMEOUT)  # --seed-ratio 0: stops once complete
    context = f"{site.announces.dump()}\n{leech.describe()}\n{seed.describe()}"
    assert done["reason"] == "done" and done["state"] == "seeding", context
    for path, data in files:
        assert (leech.download_dir / "pbts-e2e" / path).read_bytes() == data, path
    assert done["downloaded"] == SIZE and done["left"] == 0, context
    assert done["receipts_signed"] == pieces, context
    assert done["box"]["new"] == 0  # the leecher uploaded nothing, so it kept no receipt

    # The leecher's announces told the truth; the seeder holds every receipt on disk.
    events = site.announces.events(leecher)
    assert events[0] == "started" and events[-2:] == ["completed", "stopped"], context
    last = site.announces.of(leecher)[-1]
    assert (last.downloaded, last.left, last.uploaded) == (SIZE, 0, 0), context
    assert wait_until(lambda: seed.last("status").get("receipts_received") == pieces, timeout=30)
    box_path = seed.workdir / ".pbts" / "box.sqlite3"
    with sqlite3.connect(box_path) as box:
        assert box.execute("SELECT COUNT(*), SUM(piece_length) FROM receipts").fetchone() == (
            pieces,
            SIZE,
        )

    # The statistics flush records the leecher in the swarm; the seeder's stop reports.
    assert runtime_module.flush_now()
    assert TorrentHistory.objects.filter(member=leecher, torrent=torrent).exists()
    seed.stop()
    final = seed.last("exit")
    context = f"{site.announces.dump()}\n{seed.describe()}"
    assert final["reason"] == "SIGTERM" and final["all_reported"], context
    assert (final["receipts_received"], final["receipts_refused"]) == (pieces, 0), context
    assert (final["receipts_reported"], final["receipts_accepted"]) == (pieces, pieces), context
    assert final["uploaded"] == SIZE and final["box"]["reported"] == pieces, context
    assert site.announces.events(seeder)[-1] == "stopped"
    assert site.announces.of(seeder)[-1].uploaded == SIZE, context

    receipt_batch_verify()
    seeder_ledger = Ledger.objects.get(member=seeder)
    leecher_ledger = Ledger.objects.get(member=leecher)
    assert (seeder_ledger.verified_uploaded, seeder_ledger.verified_downloaded) == (SIZE, 0)
    assert (leecher_ledger.verified_uploaded, leecher_ledger.verified_downloaded) == (0, SIZE)
    assert Receipt.objects.filter(status="verified", is_credited=True).count() == pieces
    with sqlite3.connect(box_path) as box:
        states = box.execute("SELECT state, site_status, COUNT(*) FROM receipts GROUP BY 1, 2")
        assert {(state, status) for state, status, _ in states} <= {
            ("reported", "queued"),
            ("reported", "verified"),
        }


@pytest.mark.parametrize("pbts_role", ["seeder", "leecher"])
def test_standard_clients_work_with_the_pbts_peer(site: Site, launch, tmp_path: Path, pbts_role):
    """libtorrent leeches from a PBTS seeder, or seeds to a PBTS leecher: the extension is
    ignored by libtorrent (BEP 10), the data arrives, no receipt is signed or kept."""
    seeder, leecher = MemberFactory(), MemberFactory()
    key = tmp_path / "pbts.key"
    pbts_member = seeder if pbts_role == "seeder" else leecher
    token = member_api_token(pbts_member)
    assert client.register(site.url, token, client.create_key_file(key), timeout=60)[0] == 201
    files = content(27)
    torrent = torrent_upload(
        uploader=seeder, data=make_torrent(files, name="mixed", piece_length=PIECE)
    )
    seed_file = member_torrent(tmp_path, torrent, seeder, "seeder")
    leech_file = member_torrent(tmp_path, torrent, leecher, "leecher")
    options = receipt_options(site, key)
    if pbts_role == "seeder":
        seed = PbtsPeer(
            command="seed",
            torrent=seed_file,
            workdir=workdir(tmp_path, "seeder"),
            extra=options,
            token=token,
            stop_signal=signal.SIGINT,
        )
        leech = LibtorrentClient(torrent=leech_file, workdir=workdir(tmp_path, "leecher"))
    else:
        seed = LibtorrentClient(torrent=seed_file, workdir=workdir(tmp_path, "seeder"))
        leech = PbtsPeer(
            command="download",
            torrent=leech_file,
            workdir=workdir(tmp_path, "leecher"),
            extra=options,
            token=token,
            stop_signal=signal.SIGINT,
        )
    seed.download_dir.mkdir(exist_ok=True)
    write_files(seed.download_dir, "mixed", files, single=False)
    launch(seed)
    seed.wait_seeding(timeout=60)
    launch(leech)
    leech.wait_complete(timeout=TIMEOUT)
    for path, data in files:
        got = leech.download_dir / "mixed" / path
        assert sha256_file(got) == sha256_file_bytes(data), path
    pbts = seed if pbts_role == "seeder" else leech
    assert wait_until(lambda: pbts.last("status").get("peers") is not None, timeout=10)
    stop_all([leech, seed])
    final = pbts.last("exit")
    context = f"{site.announces.dump()}\n{pbts.describe()}"
    assert final["reason"] == "SIGINT", context  # Ctrl-C: the same clean stop
    assert final["receipts_signed"] == 0 and final["receipts_received"] == 0, context
    assert final["strikes"] == {}, context
    if pbts_role == "seeder":
        assert final["uploaded"] >= SIZE, context
    else:
        assert final["downloaded"] >= SIZE and final["left"] == 0, context
    assert site.announces.events(pbts_member)[-1] == "stopped", context


def sha256_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def udp_site(site: Site, settings):
    """The live site (receipts API) plus trackerd's UDP tracker in a thread: the .torrent
    files of this test list only ``udp://127.0.0.1:PORT/announce/<passkey>``."""
    with running_trackerd(udp=True, udp_hosts=("127.0.0.1",)) as daemon:
        settings.PBTS_UDP_PORT = daemon.udp_port
        settings.PBTS_UDP_ANNOUNCE_URL = f"udp://127.0.0.1:{daemon.udp_port}"
        yield site


def test_pbts_peers_find_each_other_through_the_udp_tracker_only(
    udp_site: Site, launch, tmp_path: Path
):
    """BEP 15 announces with the passkey path as BEP 41 URL data, true counters: the swarm
    forms over UDP alone, and the final announces credit exactly the bytes moved."""
    seeder, leecher = MemberFactory(), MemberFactory()
    files = content(41)
    torrent = torrent_upload(
        uploader=seeder, data=make_torrent(files, name="udp", piece_length=PIECE)
    )
    paths = {}
    for role, member in (("seeder", seeder), ("leecher", leecher)):
        paths[role] = tmp_path / f"{role}.torrent"
        served = torrent_download(torrent=torrent, member=member)
        paths[role].write_bytes(only_tracker_urls(served, scheme="udp"))
        assert metainfo.load(paths[role]).trackers[0][0].startswith("udp://127.0.0.1:")
    seed = PbtsPeer(
        command="seed", torrent=paths["seeder"], workdir=workdir(tmp_path, "seeder"), extra=[]
    )
    write_files(seed.download_dir, "udp", files, single=False)
    launch(seed)
    seed.wait_seeding(timeout=60)
    leech = PbtsPeer(
        command="download",
        torrent=paths["leecher"],
        workdir=workdir(tmp_path, "leecher"),
        extra=["--seed-ratio", "0"],
    )
    launch(leech)
    done = leech.wait_exit(timeout=TIMEOUT)
    assert done["downloaded"] == SIZE and done["tracker_error"] == "", leech.describe()
    for path, data in files:
        assert (leech.download_dir / "udp" / path).read_bytes() == data
    seed.stop()
    assert seed.last("exit")["uploaded"] == SIZE, seed.describe()
    assert runtime_module.flush_now()
    assert Ledger.objects.get(member=seeder).uploaded == SIZE
    assert Ledger.objects.get(member=leecher).downloaded == SIZE
    assert TorrentHistory.objects.get(member=leecher, torrent=torrent).completed_at is not None


def test_report_command_and_the_unregistered_key_warning(site: Site, tmp_path: Path):
    member = MemberFactory()
    token = member_api_token(member)
    key = tmp_path / "me.key"
    client.create_key_file(key)
    env = peer_environment(tmp_path)
    env["PBTS_TOKEN"] = token
    command = [sys.executable, "-m", "receipts.peer", "report", "--key", str(key)]
    command += ["--site", site.url, "--box", str(tmp_path / "box.sqlite3")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert lines[0]["kind"] == "warning" and "not your active key" in lines[0]["message"]
    assert lines[-1]["kind"] == "report" and lines[-1]["all_reported"]
    assert client.register(site.url, token, client.load_key_file(key), timeout=60)[0] == 201
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert [json.loads(line)["kind"] for line in result.stdout.splitlines()] == ["report"]
    env.pop("PBTS_TOKEN")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "PBTS_TOKEN" in json.loads(result.stdout)["message"]
