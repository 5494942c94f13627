"""End to end with real BitTorrent clients: the site runs in a thread of the test process
(``live_server``), real clients of two different implementations seed and leech a random file
on 127.0.0.1, finding each other only through the tracker, and the credits land in the
database. A member whose downloading is disabled is refused, and the client itself shows why.

The same scenario runs over UDP (BEP 15): ``trackerd`` serves UDP in a thread of the test
process, libtorrent seeds and leeches with .torrent files whose only tracker URL is the
member's ``udp://.../announce/<passkey>`` (the passkey travels as BEP 41 URL data), so only
the UDP tracker can have introduced the peers.

Drivers and the closed-swarm flags are in :mod:`tracker.tests.realclients`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import fastbencode
import pytest

from reputation.models import Ledger
from tracker import announce_runtime, announce_views
from tracker.announce import udp_tracker
from tracker.announce.records import AnnounceRequest, Refusal
from tracker.announce.wire_http import parse_announce
from tracker.models import ClientPrefix, Member, Torrent, TorrentHistory
from tracker.services.members import member_set_downloading
from tracker.services.torrents import torrent_download, torrent_upload
from tracker.tests.factories import MemberFactory
from tracker.tests.realclients import (
    Aria2Client,
    ClientProcess,
    LibtorrentClient,
    make_torrent,
    only_tracker_urls,
    sha256_file,
    stop_all,
    wait_until,
)
from tracker.tests.trackerd_helpers import running_trackerd

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

FILE_SIZE = 4 * 1024 * 1024
MAX_OVERHEAD = 1.2  # clients report payload bytes; allow some re-sent blocks
TRANSFER_TIMEOUT = 120.0
ANNOUNCE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class SeenAnnounce:
    """One announce as the tracker received and answered it."""

    passkey: str
    peer_id: bytes
    event: str
    uploaded: int
    downloaded: int
    left: int
    failure: str
    peers: int

    def __str__(self) -> str:
        reply = f"failure={self.failure!r}" if self.failure else f"peers={self.peers}"
        return (
            f"{self.passkey[:6]} {self.peer_id[:8]!r} event={self.event or '-'}"
            f" up={self.uploaded} down={self.downloaded} left={self.left} {reply}"
        )


class AnnounceRecorder:
    """Wraps the view's ``handle_announce`` to keep every announce and its reply (the real
    handler does the work; this only looks)."""

    def __init__(self, handler) -> None:
        self._handler = handler
        self.seen: list[SeenAnnounce] = []

    def __call__(self, query: bytes, **kwargs) -> bytes:
        reply = self._handler(query, **kwargs)
        try:
            req = parse_announce(query, passkey=kwargs.get("path_passkey", ""))
        except Refusal:
            return reply
        decoded = fastbencode.bdecode(reply)
        self.record(
            req,
            failure=decoded.get(b"failure reason", b"").decode("utf-8", "replace"),
            peers=len(decoded.get(b"peers", b"")) // 6,
        )
        return reply

    def record(self, req: AnnounceRequest, *, failure: str, peers: int) -> None:
        """Keep one announce and what it was answered (IPv4 peers handed out)."""
        self.seen.append(
            SeenAnnounce(
                passkey=req.passkey,
                peer_id=req.peer_id,
                event=req.event,
                uploaded=req.uploaded,
                downloaded=req.downloaded,
                left=req.left,
                failure=failure,
                peers=peers,
            )
        )

    def of(self, member: Member) -> list[SeenAnnounce]:
        """The announces made with ``member``'s passkey, in order."""
        return [a for a in self.seen if a.passkey == member.passkey]

    def events(self, member: Member) -> list[str]:
        """The ``event`` values of ``member``'s successful announces ('' for regular ones)."""
        return [a.event for a in self.of(member) if not a.failure]

    def dump(self) -> str:
        """Every announce seen, one per line, for assertion messages."""
        return "announces seen by the tracker:\n" + "\n".join(f"  {a}" for a in self.seen)


class OutcomeRecorder(AnnounceRecorder):
    """Wraps the shared decision (``announce_outcome``) as the UDP tracker calls it: every
    parsed UDP announce and its outcome or refusal (the real rules do the work)."""

    def __call__(self, req: AnnounceRequest, **kwargs):
        try:
            outcome = self._handler(req, **kwargs)
        except Refusal as exc:
            self.record(req, failure=exc.reason, peers=0)
            raise
        self.record(req, failure="", peers=len(outcome.peers4) // 6)
        return outcome


def _fresh_in_process_store(monkeypatch) -> None:
    """Give the tracker a fresh in-process peer store (no Redis sharing) for this test."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url=""))


@pytest.fixture
def announces(live_server, settings, monkeypatch) -> AnnounceRecorder:
    """The live site on 127.0.0.1 as the announce URL of downloaded .torrent files, with a
    fresh in-process peer store; returns the recorder of every announce it answers."""
    host, port = live_server.thread.httpd.server_address[:2]
    assert host == "127.0.0.1", f"the live server must listen on IPv4 loopback, not {host}"
    settings.PBTS_BASE_URL = f"http://127.0.0.1:{port}"
    settings.PBTS_UDP_PORT = 0  # HTTP only: no udp:// URL that nothing serves here
    _fresh_in_process_store(monkeypatch)
    recorder = AnnounceRecorder(announce_views.handle_announce)
    monkeypatch.setattr(announce_views, "handle_announce", recorder)
    announce_runtime.policy.cache_clear()
    try:
        yield recorder
    finally:
        announce_runtime.policy.cache_clear()


@pytest.fixture
def udp_announces(settings, monkeypatch) -> AnnounceRecorder:
    """trackerd serving UDP on 127.0.0.1 in a thread, with a fresh in-process peer store, as
    the UDP URL of downloaded .torrent files; returns the recorder of every UDP announce."""
    _fresh_in_process_store(monkeypatch)
    announce_runtime.policy.cache_clear()
    recorder = OutcomeRecorder(udp_tracker.announce_outcome)
    monkeypatch.setattr(udp_tracker, "announce_outcome", recorder)
    try:
        with running_trackerd(udp=True, udp_hosts=("127.0.0.1",)) as daemon:
            settings.PBTS_UDP_PORT = daemon.udp_port
            settings.PBTS_UDP_ANNOUNCE_URL = f"udp://127.0.0.1:{daemon.udp_port}"
            yield recorder
    finally:
        announce_runtime.policy.cache_clear()


@pytest.fixture
def launch():
    """Start client drivers; every one started is stopped at teardown, pass or fail."""
    started: list[ClientProcess] = []

    def start(client: ClientProcess) -> ClientProcess:
        started.append(client)
        client.start()
        return client

    try:
        yield start
    finally:
        stop_all(started)


def _workdir(tmp_path: Path, role: str) -> Path:
    path = tmp_path / role
    path.mkdir()
    return path


def _swarm_counts(torrent: Torrent) -> tuple[int, int]:
    return announce_runtime.peer_store().counts([torrent.pk])[torrent.pk]


@pytest.mark.parametrize(
    ("seeder_cls", "leecher_cls"),
    [(LibtorrentClient, Aria2Client), (Aria2Client, LibtorrentClient)],
    ids=["libtorrent-seeds-aria2", "aria2-seeds-libtorrent"],
)
def test_real_clients_transfer_through_the_tracker_and_get_credited(
    announces: AnnounceRecorder, launch, tmp_path: Path, seeder_cls, leecher_cls
):
    """A seeder and a leecher of different implementations meet only through the tracker;
    the file arrives intact; the final announces credit the ledgers, the snatch and the
    history; a member whose downloading is disabled sees the refusal in their client."""
    run_swarm(announces, launch, tmp_path, seeder_cls, leecher_cls)


def test_libtorrent_transfers_through_the_udp_tracker_only_and_gets_credited(
    udp_announces: AnnounceRecorder, launch, tmp_path: Path
):
    """The same over UDP (BEP 15): the .torrent files list only the member's
    ``udp://127.0.0.1:PORT/announce/<passkey>`` (HTTP removed), libtorrent sends the path as
    BEP 41 URL data, and trackerd's UDP tracker alone introduces the peers, credits the
    transfer and refuses the member whose downloading is disabled."""

    def udp_only(data: bytes) -> bytes:
        served = fastbencode.bdecode(data)
        urls = [url for tier in served[b"announce-list"] for url in tier]
        assert urls[0].startswith(b"http://") and urls[1].startswith(b"udp://127.0.0.1:"), urls
        rewritten = only_tracker_urls(data, scheme="udp")
        top = fastbencode.bdecode(rewritten)
        assert top[b"announce"] == urls[1] and top[b"announce-list"] == [[urls[1]]]
        return rewritten

    run_swarm(
        udp_announces,
        launch,
        tmp_path,
        LibtorrentClient,
        LibtorrentClient,
        rewrite=udp_only,
        client_shows_reason=False,
    )


def run_swarm(
    announces: AnnounceRecorder,
    launch,
    tmp_path: Path,
    seeder_cls: type[ClientProcess],
    leecher_cls: type[ClientProcess],
    *,
    rewrite=lambda data: data,
    client_shows_reason: bool = True,
) -> None:
    """The scenario of both tests: upload, three members' .torrent files (each passed through
    ``rewrite``), seed, leech, check the file, the refusal, the final announces, the credits,
    the snatch and the history. ``client_shows_reason``: the blocked member's client displays
    the tracker's failure text (libtorrent 2.0.8 shows a BEP 15 error's text as empty: it reads
    the message from the packet's first byte, a zero; the recorder checks what was sent)."""
    began = time.monotonic()
    staff = MemberFactory(is_staff=True)
    seeder, leecher, blocked = MemberFactory(), MemberFactory(), MemberFactory()
    for cls in (seeder_cls, leecher_cls):
        ClientPrefix.objects.update_or_create(
            prefix=cls.peer_id_prefix, defaults={"name": cls.name, "is_allowed": True}
        )

    original = _workdir(tmp_path, "source") / "pbts-e2e.bin"
    original.write_bytes(os.urandom(FILE_SIZE))
    torrent = torrent_upload(
        uploader=seeder, data=make_torrent(original, output=tmp_path / "made.torrent")
    )
    torrent_files = {}
    for role, member in (("seeder", seeder), ("leecher", leecher), ("blocked", blocked)):
        torrent_files[role] = tmp_path / f"{role}.torrent"
        torrent_files[role].write_bytes(rewrite(torrent_download(torrent=torrent, member=member)))
    # The blocked member got the .torrent before staff disabled their downloading.
    member_set_downloading(member=blocked, actor=staff, enabled=False, reason="e2e test")

    seed_client = seeder_cls(torrent=torrent_files["seeder"], workdir=_workdir(tmp_path, "seeder"))
    seed_client.download_dir.mkdir()
    shutil.copyfile(original, seed_client.download_dir / original.name)
    launch(seed_client)
    seed_client.wait_seeding(timeout=60)
    assert wait_until(lambda: _swarm_counts(torrent) == (1, 0), timeout=ANNOUNCE_TIMEOUT), (
        f"the tracker never saw the seeder\n{announces.dump()}\n{seed_client.describe()}"
    )

    leech_client = launch(
        leecher_cls(torrent=torrent_files["leecher"], workdir=_workdir(tmp_path, "leecher"))
    )
    blocked_client = launch(
        leecher_cls(torrent=torrent_files["blocked"], workdir=_workdir(tmp_path, "blocked"))
    )
    leech_client.wait_complete(timeout=TRANSFER_TIMEOUT)
    transferred_at = time.monotonic()
    got = leech_client.download_dir / original.name
    assert sha256_file(got) == sha256_file(original), f"{got} differs from the original"

    reason = blocked_client.wait_tracker_error(timeout=ANNOUNCE_TIMEOUT)
    if client_shows_reason:
        assert "Downloading disabled" in reason, f"{reason!r}\n{blocked_client.describe()}"
    else:  # the client saw an error packet; what it said is checked in the recorder below
        assert "tracker sent a failure message" in reason, blocked_client.describe()

    # Final announces: the leecher's `completed`, then `stopped` from both.
    assert wait_until(lambda: "completed" in announces.events(leecher), timeout=ANNOUNCE_TIMEOUT), (
        f"no `completed` from the leecher\n{announces.dump()}\n{leech_client.describe()}"
    )
    stop_all([leech_client, seed_client, blocked_client])
    for role, member in (("seeder", seeder), ("leecher", leecher)):
        assert wait_until(lambda m=member: "stopped" in announces.events(m), timeout=10), (
            f"no `stopped` from the {role}\n{announces.dump()}"
        )
    context = announces.dump()
    assert _swarm_counts(torrent) == (0, 0), context

    # Each member announced with its own implementation; the tracker introduced the leecher
    # to the seeder (the swarm is closed: no DHT, PEX or LSD).
    for member, cls in ((seeder, seeder_cls), (leecher, leecher_cls), (blocked, leecher_cls)):
        prefixes = {a.peer_id[: len(cls.peer_id_prefix)] for a in announces.of(member)}
        assert prefixes == {cls.peer_id_prefix.encode()}, context
    assert announces.of(leecher)[0].event == "started", context
    assert announces.of(leecher)[0].peers == 1, context

    assert announce_runtime.flush_now() is True
    seeder_ledger = Ledger.objects.get(member=seeder)
    leecher_ledger = Ledger.objects.get(member=leecher)
    assert FILE_SIZE <= seeder_ledger.uploaded <= FILE_SIZE * MAX_OVERHEAD, context
    assert FILE_SIZE <= leecher_ledger.downloaded <= FILE_SIZE * MAX_OVERHEAD, context
    # Credited exactly what the clients reported last (their counters started at zero).
    assert seeder_ledger.uploaded == announces.of(seeder)[-1].uploaded, context
    assert leecher_ledger.downloaded == announces.of(leecher)[-1].downloaded, context
    torrent.refresh_from_db()
    assert (torrent.snatches, torrent.seeders, torrent.leechers) == (1, 0, 0), context
    history = TorrentHistory.objects.get(member=leecher, torrent=torrent)
    assert history.completed_at is not None, context
    assert history.downloaded == leecher_ledger.downloaded, context

    # The blocked member was refused every time it wanted to leech and was credited nothing.
    # (A `stopped` only leaves the swarm: Transmission sends one even after refusals.)
    refused = [a for a in announces.of(blocked) if a.left > 0 and a.event != "stopped"]
    assert refused, context
    assert all("Downloading disabled" in a.failure and a.peers == 0 for a in refused), context
    assert Ledger.objects.get(member=blocked).downloaded == 0, context
    assert not TorrentHistory.objects.filter(member=blocked).exists(), context

    print(
        f"\n{seeder_cls.name} -> {leecher_cls.name}: file transferred after"
        f" {transferred_at - began:.1f} s, test body {time.monotonic() - began:.1f} s\n{context}"
    )
