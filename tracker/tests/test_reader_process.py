"""A web process that only reads the swarms (profile counts, scrape) while a separate trackerd
process serves the announces sees the peers trackerd shares through Redis."""

from __future__ import annotations

import time
import urllib.request
from urllib.parse import quote_from_bytes

import pytest
from django.urls import reverse

from tracker import announce_runtime
from tracker.models import ClientPrefix
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from tracker.tests.trackerd_helpers import trackerd_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


def _announce_url(port: int, torrent, member) -> str:
    params = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": b"-TR4060-".ljust(20, b"r"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": b"0",
        "event": b"started",
    }
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in params.items())
    return f"http://127.0.0.1:{port}/announce/{member.passkey}?{query}"


@pytest.fixture
def trackerd_process(tmp_path):
    """``manage.py trackerd`` in its own process (HTTP only) with the production settings
    module (so its background thread shares peers every 0.1 s), on this run's database and
    Redis prefix; stopped by PID at the end."""
    with trackerd_subprocess(tmp_path / "trackerd.log", PBTS_SYNC_SECONDS="0.1") as port:
        yield port


def test_profile_of_a_web_process_that_never_announced_shows_trackerd_peers(
    client, monkeypatch, trackerd_process
):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder = MemberFactory()
    torrent = upload_torrent(seeder)
    with urllib.request.urlopen(_announce_url(trackerd_process, torrent, seeder), timeout=5) as r:
        assert b"interval" in r.read()
    client.force_login(seeder)
    seeding = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and seeding != 1:
        # A fresh web process each round: nothing in it ever served an announce.
        monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
        stats = client.get(reverse("profile")).context["stats"]
        seeding = stats.seeding
        time.sleep(0.2)
    assert seeding == 1
    assert stats.leeching == 0
