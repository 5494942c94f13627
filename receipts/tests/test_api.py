"""Receipts API: who sees a report, the report list, /attest, and the OpenAPI schema."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.management import call_command

from receipts import format as receipt_format
from receipts.services.verify import receipt_batch_verify
from receipts.site import site_realm
from receipts.tests.conftest import (
    LAST_PIECE,
    PIECE,
    api_for,
    b64,
    make_actor,
    make_receipt,
    post_json,
    single,
)
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def report_id(uploader, downloader, swarm) -> int:
    data = make_receipt(uploader, downloader, swarm)
    bad = {"receipt": "x", "signature": "y"}
    response = post_json(
        api_for(uploader.member), "/report", {"receipts": [single(data, downloader), bad]}
    )
    return response.json()["id"]


@pytest.mark.parametrize("path", ["/report/{}", "/api/v1/reports/{}/"])
def test_the_reporter_and_staff_see_a_report_others_do_not(uploader, report_id, path):
    url = path.format(report_id)
    mine = api_for(uploader.member).get(url)
    assert mine.status_code == 200
    assert [r["status"] for r in mine.json()["receipts"]] == ["queued", "refused"]
    assert api_for(MemberFactory(is_staff=True)).get(url).status_code == 200
    assert api_for(make_actor().member).get(url).status_code == 404
    assert api_for(None).get(url).status_code == 401


def test_the_report_shows_the_final_status_once_verified(uploader, report_id):
    receipt_batch_verify()
    body = api_for(uploader.member).get(f"/report/{report_id}").json()
    assert body["status"] == "done"
    assert (body["verified"], body["refused"], body["queued"]) == (1, 1, 0)
    assert body["credited_bytes"] == PIECE
    assert body["receipts"][0]["status"] == "verified" and body["receipts"][0]["verified_at"]


def test_an_unknown_report_is_a_404(uploader):
    assert api_for(uploader.member).get("/report/999999").status_code == 404


def test_the_report_list_shows_only_mine(uploader, report_id):
    post_json(
        api_for(make_actor().member), "/report", {"receipts": [{"receipt": "", "signature": ""}]}
    )
    body = api_for(uploader.member).get("/api/v1/reports/").json()
    assert [r["id"] for r in body["results"]] == [report_id]


def test_attest_returns_the_canonical_bytes_to_sign(uploader, downloader, torrent):
    body = {
        "info_hash": torrent.info_hash.upper(),
        "piece_index": 6,
        "uploader_pk": b64(uploader.pk),
        "downloader_pk": b64(downloader.pk),
        "time": 1_800_000_000,
    }
    response = post_json(api_for(downloader.member), "/attest", body)
    assert response.status_code == 200, response.json()
    out = response.json()
    data = base64.b64decode(out["receipt"])
    expected = receipt_format.Receipt(
        realm=site_realm(),
        info_hash=bytes.fromhex(torrent.info_hash),
        piece_index=6,
        piece_length=LAST_PIECE,
        uploader_pk=uploader.pk,
        downloader_pk=downloader.pk,
        time_bucket=1_800_000_000 // 60,
    )
    assert data == expected.to_bytes()
    assert out["receipt_id"] == expected.receipt_id.hex()
    assert out["realm_id"] == site_realm().hex()
    assert (out["piece_length"], out["time_bucket"]) == (LAST_PIECE, 30_000_000)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"info_hash": "ab" * 20}, "info_hash", "torrent: no approved torrent"),
        ({"info_hash": "xyz"}, "info_hash", "This value does not match"),
        ({"piece_index": 7}, "piece_index", "piece index: 7 is past"),
        ({"piece_length": 16_383}, "piece_length", "piece length: 16383 bytes"),
        ({"uploader_pk": "AAAA"}, "uploader_pk", "Must be 48 bytes"),
        ({"downloader_pk": None}, "downloader_pk", "This field may not be null"),
        ({"same": True}, "downloader_pk", "uploader_pk and downloader_pk are the same key"),
    ],
)
def test_attest_refuses_bad_fields(uploader, downloader, torrent, change, field, message):
    body = {
        "info_hash": torrent.info_hash,
        "piece_index": 0,
        "uploader_pk": b64(uploader.pk),
        "downloader_pk": b64(downloader.pk),
    }
    if change.pop("same", False):
        body["downloader_pk"] = body["uploader_pk"]
    body.update(change)
    response = post_json(api_for(downloader.member), "/attest", body)
    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_attest_needs_a_token(uploader, downloader, torrent):
    body = {"info_hash": torrent.info_hash, "piece_index": 0}
    assert post_json(api_for(None), "/attest", body).status_code == 401


def test_schema_documents_the_receipt_endpoints_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", out
    )
    paths = json.loads(out.read_text())["paths"]
    expected = {
        "/register": {"post"},
        "/report": {"post"},
        "/report/{id}": {"get"},
        "/attest": {"post"},
        "/keygen": {"post"},
        "/api/v1/keys/": {"get", "post"},
        "/api/v1/reports/": {"get", "post"},
        "/api/v1/reports/{id}/": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
