"""End to end with Transmission, Deluge and rtorrent: each leeches a random file from a
libtorrent seeder through the site's tracker, and the tracker credits the transfer (the same
scenario as :mod:`tracker.tests.test_realclients`, whose ``run_swarm`` does the work: upload,
three members' .torrent files, seed, leech, file intact, a member with downloading disabled
refused and shown the reason by the client itself, ``completed`` and ``stopped`` announces,
ledgers, snatch and history).

- Transmission ignores tracker-given peers in 127.0.0.0/8, so its swarm runs in a network
  namespace made by the test (:mod:`tracker.tests.netns`): the site listens on the host end of
  a veth pair (``10.A.B.1``), the seeder and the Transmission clients run inside on
  ``10.A.B.2``; the namespace, the pair and anything left in it are removed at teardown.
- Deluge (libtorrent-rasterbar underneath) and rtorrent (libtorrent-rakshasa) take 127.0.0.1
  peers: their swarms run on loopback against the ``live_server``.

Every peer_id the clients announced starts with a prefix of the seeded client whitelist
(``tracker/seed_data.py``), and a whitelist loaded by ``manage.py seed`` alone admits each
client's exact prefix through the real announce endpoint while refusing an unlisted one.

Drivers and the closed-swarm settings are in :mod:`tracker.tests.realclients`; the Debian
packages in the Makefile's ``TEST_DEBS``; docs/real-clients.md describes the setup.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.live_server_helper import LiveServer

from tracker import announce_runtime, announce_views, seed_data
from tracker.models import ClientPrefix
from tracker.tests import test_realclients as base
from tracker.tests.factories import MemberFactory
from tracker.tests.netns import Netns, network_namespace
from tracker.tests.realclients import (
    ClientProcess,
    DelugeClient,
    LibtorrentClient,
    RtorrentClient,
    TransmissionClient,
    wait_until,
)
from tracker.tests.test_announce import announce as http_announce
from tracker.tests.test_realclients import AnnounceRecorder, _fresh_in_process_store, run_swarm
from tracker.tests.torrents import upload_torrent

pytestmark = [pytest.mark.realclient, pytest.mark.django_db(transaction=True)]

# The loopback live server with its announce recorder, and the client launcher that stops every
# client at teardown: the fixtures of test_realclients, shared.
announces = base.announces
launch = base.launch

SEEDED_PREFIXES = tuple(prefix.encode() for prefix, _ in seed_data.CLIENT_PREFIXES)


@pytest.fixture
def netns() -> Netns:
    """A network namespace joined to the host by a veth pair, removed at teardown."""
    with network_namespace() as ns:
        yield ns


@pytest.fixture
def netns_announces(netns: Netns, settings, monkeypatch) -> AnnounceRecorder:
    """The site served by a second live server on the host end of the veth pair
    (``http://10.A.B.1:PORT``), the announce URL of downloaded .torrent files, with a fresh
    in-process peer store; returns the recorder of every announce it answers."""
    server = LiveServer(f"{netns.host_addr}:0")
    try:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, netns.host_addr]
        settings.PBTS_BASE_URL = server.url
        settings.PBTS_UDP_PORT = 0
        _fresh_in_process_store(monkeypatch)
        recorder = AnnounceRecorder(announce_views.handle_announce)
        monkeypatch.setattr(announce_views, "handle_announce", recorder)
        announce_runtime.policy.cache_clear()
        yield recorder
    finally:
        announce_runtime.policy.cache_clear()
        server.stop()


def _assert_whitelisted(recorder: AnnounceRecorder) -> None:
    """Every peer_id announced starts with a prefix of the seeded whitelist."""
    assert recorder.seen, recorder.dump()
    for seen in recorder.seen:
        assert seen.peer_id.startswith(SEEDED_PREFIXES), f"{seen.peer_id!r}\n{recorder.dump()}"


def test_transmission_leeches_in_a_network_namespace_and_gets_credited(
    netns: Netns, netns_announces: AnnounceRecorder, launch, tmp_path: Path
):
    """Transmission 3.00 leeches from libtorrent inside the test's namespace; the tracker on
    the host end of the veth pair introduced them, credits the transfer and refuses the member
    whose downloading is disabled (Transmission shows the reason)."""
    assert netns_announces is not None
    seeder_cls = LibtorrentClient.placed(host=netns.ns_addr, netns=netns.name)
    leecher_cls = TransmissionClient.placed(host=netns.ns_addr, netns=netns.name)
    run_swarm(netns_announces, launch, tmp_path, seeder_cls, leecher_cls)
    # The clients really ran in the namespace: the tracker saw them at its address.
    _assert_whitelisted(netns_announces)


@pytest.mark.parametrize("leecher_cls", [DelugeClient, RtorrentClient], ids=lambda c: c.name)
def test_deluge_and_rtorrent_leech_on_loopback_and_get_credited(
    announces: AnnounceRecorder, launch, tmp_path: Path, leecher_cls: type[ClientProcess]
):
    """Deluge 2.0.3 and rtorrent 0.9.8 each leech from libtorrent on 127.0.0.1, meeting it only
    through the tracker, which credits the transfer and refuses the blocked member (the client
    shows the reason)."""
    run_swarm(announces, launch, tmp_path, LibtorrentClient, leecher_cls)
    _assert_whitelisted(announces)


@pytest.mark.parametrize(
    "client_cls", [TransmissionClient, DelugeClient, RtorrentClient], ids=lambda c: c.name
)
def test_the_seeded_whitelist_admits_the_client_and_refuses_an_unlisted_one(
    client, monkeypatch, client_cls: type[ClientProcess]
):
    """With only the whitelist ``manage.py seed`` loads, the HTTP announce endpoint admits a
    peer_id with the client's exact prefix and refuses one from a client not listed (an old
    Transmission 2.94, ``-TR2940-``)."""
    _fresh_in_process_store(monkeypatch)
    call_command("seed", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert set(ClientPrefix.objects.values_list("prefix", flat=True)) == {
        p for p, _ in seed_data.CLIENT_PREFIXES
    }
    member = MemberFactory()
    torrent = upload_torrent(member)
    admitted = http_announce(client, member, torrent, peer=client_cls.peer_id_prefix.encode())
    assert b"failure reason" not in admitted, admitted
    assert admitted[b"complete"] == 1, admitted
    refused = http_announce(client, member, torrent, peer=b"-TR2940-", port=51414)
    assert refused == {b"failure reason": b"Client not allowed"}


def test_the_namespace_is_closed_and_removed_with_its_processes_even_when_the_test_fails():
    """Inside the namespace the only route is the veth /30 (no default route, nothing beyond
    the host end); when the body raises, the process left inside is killed, and the namespace
    and both veth ends are gone."""
    left_inside = None
    with pytest.raises(RuntimeError, match="test body failed"), network_namespace() as ns:
        routes = subprocess.run(
            [*ns.exec_prefix, "ip", "-4", "route", "show"],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        ).stdout
        assert "default" not in routes and ns.host_addr.rsplit(".", 1)[0] in routes, routes
        left_inside = subprocess.Popen([*ns.exec_prefix, "sleep", "60"], start_new_session=True)
        assert wait_until(lambda: left_inside.pid in ns.pids(), timeout=10), ns.pids()
        raise RuntimeError("test body failed")
    assert left_inside is not None and left_inside.wait(timeout=15) == -signal.SIGKILL
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=15)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=15)
    assert ns.name not in names.stdout
    assert ns.host_if not in links.stdout and ns.ns_if not in links.stdout
