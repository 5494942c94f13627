"""End to end over real HTTP: two members make keys with the client library and register them,
the downloader joins the swarm and signs receipts, the uploader reports them (singly signed and
aggregated), the verify task runs, both ledgers are credited exactly and the reports show it."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote_from_bytes

import fastbencode
import pytest

from receipts import client
from receipts.models import Receipt
from receipts.tasks import verify_receipts
from receipts.tests.conftest import LAST_PIECE, PIECE, PIECES, TORRENT_SIZE
from reputation.models import Ledger
from tracker import announce_runtime
from tracker.models import ClientPrefix, TorrentHistory
from tracker.services.members import member_api_token
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db(transaction=True)


def announce(site: str, member, torrent, **params) -> dict:
    """One HTTP announce to the live site as ``member``."""
    values = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": b"-TR4060-".ljust(20, b"e"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": str(TORRENT_SIZE).encode(),
        "event": b"started",
    }
    values.update({k: str(v).encode() for k, v in params.items()})
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in values.items())
    with urllib.request.urlopen(f"{site}/announce/{member.passkey}?{query}", timeout=30) as r:
        return fastbencode.bdecode(r.read())


def get_json(site: str, path: str, token: str) -> dict:
    request = urllib.request.Request(f"{site}{path}", headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_two_members_keys_receipts_reports_worker_credit(
    live_server, tmp_path, monkeypatch, backend_name
):
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url=""))
    site = live_server.url
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher = MemberFactory(), MemberFactory()
    seeder_token, leecher_token = member_api_token(seeder), member_api_token(leecher)
    torrent = upload_torrent(seeder, size=TORRENT_SIZE, piece_length=PIECE)

    # Keys: made on the members' machines, registered with their API tokens.
    seeder_key = client.create_key_file(tmp_path / "seeder.key")
    leecher_key = client.create_key_file(tmp_path / "leecher.key")
    assert client.register(site, seeder_token, seeder_key, timeout=60)[0] == 201
    assert client.register(site, leecher_token, leecher_key, timeout=60)[0] == 201

    # The seeder seeds; the leecher joins the swarm and downloads; the statistics flush
    # records both (a receipt needs both in the swarm at its time).
    assert b"failure reason" not in announce(site, seeder, torrent, left=0)
    assert b"failure reason" not in announce(site, leecher, torrent)
    announce(site, leecher, torrent, downloaded=TORRENT_SIZE, left=0, event="completed")
    assert announce_runtime.flush_now()
    assert TorrentHistory.objects.filter(member=leecher, torrent=torrent).exists()

    # The leecher signs a receipt per piece received from the seeder.
    realm = bytes.fromhex(get_json(site, "/api/v1/receipts/config/", leecher_token)["realm_id"])

    def signed(index: int) -> dict:
        length = LAST_PIECE if index == PIECES - 1 else PIECE
        return client.sign_receipt(
            leecher_key,
            realm=realm,
            info_hash=bytes.fromhex(torrent.info_hash),
            piece_index=index,
            piece_length=length,
            uploader_pk=seeder_key.pk,
            backend=backend_name,
        )

    singles = [signed(0), signed(PIECES - 1)]
    grouped = [signed(1), signed(2), signed(3)]

    # The seeder reports them: once singly signed, once aggregated.
    body = client.report_body(singles)
    code, first = client.report(site, seeder_token, body, timeout=120)
    assert code == 202 and [r["status"] for r in first["receipts"]] == ["queued", "queued"]
    aggregate = client.aggregate_signed(grouped, backend=backend_name)
    code, second = client.report(site, seeder_token, client.report_body(aggregate), timeout=120)
    assert code == 202 and second["aggregates"][0]["status"] == "queued"

    # The worker runs (Celery is eager here: each report was verified after its commit; this
    # run finds nothing left and credits nothing twice).
    assert verify_receipts() == 0
    credited = 4 * PIECE + LAST_PIECE
    seeder_ledger = Ledger.objects.get(member=seeder)
    leecher_ledger = Ledger.objects.get(member=leecher)
    assert (seeder_ledger.verified_uploaded, seeder_ledger.verified_downloaded) == (credited, 0)
    assert (leecher_ledger.verified_uploaded, leecher_ledger.verified_downloaded) == (0, credited)
    assert Receipt.objects.filter(status="verified", is_credited=True).count() == 5

    # The reports show the final result, through the client and the versioned API.
    code, status = client.status(site, seeder_token, str(first["id"]), timeout=30)
    assert code == 200 and status["status"] == "done"
    assert [r["status"] for r in status["receipts"]] == ["verified", "verified"]
    assert status["credited_bytes"] == PIECE + LAST_PIECE
    detail = get_json(site, f"/api/v1/reports/{second['id']}/", seeder_token)
    assert detail["aggregates"][0]["status"] == "verified"
    assert [r["status"] for r in detail["aggregates"][0]["receipts"]] == ["verified"] * 3
    # Reporting the same receipts again earns nothing.
    code, again = client.report(site, seeder_token, body, timeout=60)
    assert [r["reason"] for r in again["receipts"]] == ["duplicate: already reported (hole 7)"] * 2
    assert Ledger.objects.get(member=seeder).verified_uploaded == credited
