"""A web process that only reads the swarms (profile counts, scrape) while a separate trackerd
process serves the announces sees the peers trackerd shares through Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from django.urls import reverse

from tracker import announce_runtime
from tracker.models import ClientPrefix
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from tracker.tests.trackerd_helpers import free_tcp_port, stop_process

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


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
def trackerd_process(settings, tmp_path):
    """``manage.py trackerd`` in its own process (HTTP only) with the production settings
    module (so its background thread shares peers every 0.1 s), on this run's database and
    Redis prefix; stopped by PID at the end."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
        PBTS_SYNC_SECONDS="0.1",
        PBTS_UDP_PORT="0",
    )
    port = free_tcp_port()
    log = (tmp_path / "trackerd.log").open("wb")
    cmd = [sys.executable, "manage.py", "trackerd", "--port", str(port), "--udp-port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/announce", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"trackerd did not start: {(tmp_path / 'trackerd.log').read_text()}")
        yield port
    finally:
        stop_process(proc)
        log.close()


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
