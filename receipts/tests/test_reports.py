"""Report submission: every check accepts the good receipt and refuses the bad one, with a
reason, no 500 and no credit; oversize and malformed reports store nothing."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from django.utils import timezone

from receipts import format as receipt_format
from receipts.models import AggregateSignature, Receipt, Report, Status
from receipts.tests.conftest import (
    LAST_PIECE,
    PIECE,
    PIECES,
    api_for,
    b64,
    group,
    make_actor,
    make_receipt,
    post_json,
    seen,
    single,
)
from reputation.models import Ledger
from tracker.models import TorrentHistory, TorrentStatus
from tracker.services.members import member_ban
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

REPORTS = "/api/v1/reports/"


def submit(reporter, body, url: str = "/report"):
    """POST a report as ``reporter``; returns the response."""
    return post_json(api_for(reporter.member), url, body)


def statuses(response) -> list[tuple[str, str]]:
    """``(status, reason)`` of each singly-signed receipt in a report response."""
    return [(r["status"], r["reason"]) for r in response.json()["receipts"]]


def no_credit() -> bool:
    return not Ledger.objects.filter(verified_uploaded__gt=0).exists() and not (
        Ledger.objects.filter(verified_downloaded__gt=0).exists()
    )


def test_a_good_receipt_is_queued_and_the_report_stored(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm, index=2)
    response = submit(uploader, {"receipts": [single(data, downloader)]})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert (body["received"], body["queued"], body["refused"]) == (1, 1, 0)
    [entry] = body["receipts"]
    assert entry["status"] == "queued" and entry["reason"] == ""
    assert entry["receipt_id"] == receipt_format.Receipt.from_bytes(data).receipt_id.hex()
    assert response["Location"] == f"/api/v1/reports/{body['id']}/"
    row = Receipt.objects.get()
    assert row.status == Status.QUEUED and not row.is_credited
    assert (row.uploader, row.downloader, row.torrent) == (
        uploader.member,
        downloader.member,
        swarm,
    )
    assert row.piece_length == PIECE and bytes(row.data) == data
    assert no_credit()


def test_the_versioned_path_takes_reports_too(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    response = submit(uploader, {"receipts": [single(data, downloader)]}, url=REPORTS)
    assert response.status_code == 202
    assert statuses(response) == [("queued", "")]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda e: {**e, "receipt": "***"}, "receipt: not valid base64"),
        (lambda e: {**e, "receipt": b64(b"x" * 180)}, "receipt: a receipt is 181 bytes, got 180"),
        (lambda e: {**e, "receipt": b64(b"x" * 181)}, "receipt: not a PBTS receipt"),
        (lambda e: {**e, "signature": "@@"}, "signature: not valid base64"),
        (lambda e: {**e, "signature": b64(b"s" * 95)}, "signature: must be 96 bytes, got 95"),
        (lambda e: {**e, "signature": ""}, "signature: must be 96 bytes, got 0"),
    ],
)
def test_bad_encodings_are_refused_one_by_one(uploader, downloader, swarm, mangle, reason):
    good = single(make_receipt(uploader, downloader, swarm, index=0), downloader)
    bad = mangle(single(make_receipt(uploader, downloader, swarm, index=1), downloader))
    response = submit(uploader, {"receipts": [good, bad]})
    assert response.status_code == 202
    [first, second] = statuses(response)
    assert first == ("queued", "")
    assert second[0] == "refused" and second[1].startswith(reason), second
    assert Receipt.objects.filter(status=Status.REFUSED).count() == 1


def test_an_unsupported_version_is_refused(uploader, downloader, swarm):
    data = bytearray(make_receipt(uploader, downloader, swarm))
    data[16] = 2
    response = submit(uploader, {"receipts": [single(bytes(data), downloader)]})
    assert statuses(response) == [("refused", "receipt: unsupported receipt version 2")]


def test_a_reporter_without_a_key_is_told_to_register(downloader, torrent):
    stranger = make_actor(register=False)
    seen(downloader.member, torrent)
    data = make_receipt(stranger, downloader, torrent)
    response = submit(stranger, {"receipts": [single(data, downloader)]})
    assert statuses(response)[0][1].startswith("uploader key: you have no active key")


def test_a_banned_downloader_signs_nothing(uploader, downloader, swarm):
    member_ban(member=downloader.member, actor=MemberFactory(is_staff=True), reason="sybil")
    data = make_receipt(uploader, downloader, swarm)
    response = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(response)[0][1].startswith("downloader: the account is banned")


def test_a_rotated_downloader_key_no_longer_signs(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    downloader.member.bls_keys.update(revoked_at=timezone.now())
    response = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(response)[0][1].startswith("downloader key: not the active key")


def test_unknown_and_unapproved_torrents_are_refused(uploader, downloader, swarm):
    other = upload_torrent(uploader.member, size=50_000, piece_length=PIECE)
    seen(downloader.member, other)
    torrent_moderate(
        torrent=other,
        actor=MemberFactory(is_staff=True),
        status=TorrentStatus.REJECTED,
        reason="dupe",
    )
    rejected = make_receipt(uploader, downloader, other)
    unknown = bytearray(make_receipt(uploader, downloader, swarm))
    unknown[49:69] = b"\x42" * 20  # an info_hash nobody registered
    body = {"receipts": [single(rejected, downloader), single(bytes(unknown), downloader)]}
    response = submit(uploader, body)
    reasons = [reason for _, reason in statuses(response)]
    assert all(r.startswith("torrent: no approved torrent") for r in reasons)


def test_piece_index_must_be_inside_the_torrent(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm, index=PIECES, length=PIECE)
    response = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(response) == [
        ("refused", "piece index: 7 is past the torrent's last piece (6)")
    ]


def test_the_last_piece_is_credited_at_its_real_length(uploader, downloader, swarm):
    right = make_receipt(uploader, downloader, swarm, index=PIECES - 1)
    full = make_receipt(uploader, downloader, swarm, index=PIECES - 1, length=PIECE)
    response = submit(uploader, {"receipts": [single(right, downloader), single(full, downloader)]})
    [ok, refused] = statuses(response)
    assert ok == ("queued", "")
    assert refused[1].startswith(f"piece length: {PIECE} bytes, but piece 6 of this torrent")
    assert Receipt.objects.get(status=Status.QUEUED).piece_length == LAST_PIECE


def test_piece_length_counts_bep47_padding_of_hybrid_torrents(uploader, downloader):
    # Two files padded to piece boundaries: the v1 pieces cover 2 * 16 KiB + 5,000 bytes.
    torrent = upload_torrent(
        uploader.member, hybrid=True, files=[("a.bin", 20_000), ("b.bin", 5_000)]
    )
    seen(uploader.member, torrent)
    seen(downloader.member, torrent)
    assert torrent.size == 25_000 and torrent.piece_count == 3
    good = make_receipt(uploader, downloader, torrent, index=2, length=5_000)
    # Torrent.size leaves padding out: 25,000 - 2 * 16 KiB would be negative.
    wrong = make_receipt(uploader, downloader, torrent, index=2, length=5_001)
    response = submit(uploader, {"receipts": [single(good, downloader), single(wrong, downloader)]})
    assert [s for s, _ in statuses(response)] == ["queued", "refused"]


def test_time_outside_the_window_is_refused(uploader, downloader, swarm, settings):
    settings.PBTS_RECEIPT_WINDOW_SECONDS = 3600
    settings.PBTS_RECEIPT_PRESENCE_SLACK_SECONDS = 10**6
    now = time.time()
    old = make_receipt(uploader, downloader, swarm, index=0, when=now - 7200)
    recent = make_receipt(uploader, downloader, swarm, index=1, when=now - 1800)
    skewed = make_receipt(uploader, downloader, swarm, index=2, when=now + 60)
    body = {"receipts": [single(d, downloader) for d in (old, recent, skewed)]}
    response = submit(uploader, body)
    [a, b, c] = statuses(response)
    assert a == ("refused", "time: older than the receipt window of 3600 seconds")
    assert b == ("queued", "") and c == ("queued", "")


def test_the_downloader_must_have_been_seen_in_the_swarm_around_that_time(
    uploader, downloader, torrent, settings
):
    settings.PBTS_RECEIPT_PRESENCE_SLACK_SECONDS = 3600
    there = seen(uploader.member, torrent)  # the uploader was in the swarm all along
    TorrentHistory.objects.filter(pk=there.pk).update(
        created_at=timezone.now() - timezone.timedelta(hours=4)
    )
    data = make_receipt(uploader, downloader, torrent, index=0)
    absent = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(absent) == [
        ("refused", "downloader: not seen in this torrent's swarm around that time")
    ]
    # Seen in another torrent's swarm only: still refused.
    elsewhere = upload_torrent(uploader.member, size=50_000, piece_length=PIECE)
    seen(downloader.member, elsewhere)
    assert statuses(submit(uploader, {"receipts": [single(data, downloader)]}))[0][0] == "refused"
    # Seen in this swarm, but only long after the receipt's time.
    history = seen(downloader.member, torrent)
    early = make_receipt(uploader, downloader, torrent, index=1, when=time.time() - 3 * 3600)
    late = submit(uploader, {"receipts": [single(early, downloader)]})
    assert statuses(late)[0][1].startswith("downloader: not seen")
    # Within the slack of the first time seen: accepted (a refused receipt holds no id).
    TorrentHistory.objects.filter(pk=history.pk).update(
        created_at=timezone.now() - timezone.timedelta(hours=2)
    )
    again = submit(uploader, {"receipts": [single(early, downloader), single(data, downloader)]})
    assert statuses(again) == [("queued", ""), ("queued", "")]


def test_an_already_queued_receipt_is_refused_and_a_refused_one_may_come_back(
    uploader, downloader, swarm
):
    data = make_receipt(uploader, downloader, swarm)
    first = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(first) == [("queued", "")]
    second = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(second) == [("refused", "duplicate: already reported (hole 7)")]
    # Once refused (here: by the verify task for a bad signature), the id is free again.
    Receipt.objects.filter(status=Status.QUEUED).update(
        status=Status.REFUSED, reason="signature: does not verify"
    )
    third = submit(uploader, {"receipts": [single(data, downloader)]})
    assert statuses(third) == [("queued", "")]
    assert Receipt.objects.filter(status=Status.QUEUED).count() == 1


def test_an_aggregate_of_good_receipts_is_queued_as_one_group(uploader, swarm):
    signers = [make_actor() for _ in range(3)]
    for actor in signers:
        seen(actor.member, swarm)
    entries = [(make_receipt(uploader, a, swarm, index=i), a) for i, a in enumerate(signers)]
    response = submit(uploader, {"aggregates": [group(entries)]})
    assert response.status_code == 202
    [agg] = response.json()["aggregates"]
    assert (agg["status"], agg["size"]) == ("queued", 3)
    assert [r["status"] for r in agg["receipts"]] == ["queued"] * 3
    stored = AggregateSignature.objects.get()
    assert stored.receipts.filter(status=Status.QUEUED, signature__isnull=True).count() == 3


def test_one_refused_receipt_refuses_its_whole_aggregate(uploader, downloader, swarm):
    good = make_receipt(uploader, downloader, swarm, index=0)
    wrong = make_receipt(uploader, downloader, swarm, index=1, length=PIECE - 1)
    also_good = make_receipt(uploader, downloader, swarm, index=2)
    body = {
        "receipts": [single(also_good, downloader)],
        "aggregates": [group([(good, downloader), (wrong, downloader)])],
    }
    response = submit(uploader, body)
    assert statuses(response) == [("queued", "")]
    [agg] = response.json()["aggregates"]
    assert agg["status"] == "refused"
    assert agg["reason"].startswith("aggregates[0].receipts[1]: piece length:")
    reasons = [r["reason"] for r in agg["receipts"]]
    assert reasons[0] == (
        "aggregate: refused with its group because aggregates[0].receipts[1] was refused"
    )
    assert reasons[1].startswith("piece length:")
    body = response.json()
    assert (body["received"], body["queued"], body["refused"]) == (3, 1, 2)


def test_an_aggregate_with_an_unusable_signature_is_refused(uploader, downloader, swarm):
    entry = group([(make_receipt(uploader, downloader, swarm), downloader)])
    entry["signature"] = b64(b"\x00" * 10)
    response = submit(uploader, {"aggregates": [entry]})
    [agg] = response.json()["aggregates"]
    assert agg["status"] == "refused"
    assert (
        agg["reason"]
        == "aggregate: its signature is unusable (signature: must be 96 bytes, got 10)"
    )
    assert agg["receipts"][0]["reason"] == agg["reason"]


def test_an_oversize_report_is_refused_whole_with_a_field_message(uploader, downloader, swarm):
    entry = single(make_receipt(uploader, downloader, swarm), downloader)
    with override_settings(PBTS_REPORT_MAX_RECEIPTS=3):
        body = {
            "receipts": [entry, entry],
            "aggregates": [{"receipts": ["a", "b"], "signature": ""}],
        }
        response = submit(uploader, body)
    assert response.status_code == 400
    assert response.json() == {
        "receipts": [
            "A report holds at most 3 receipts (singly-signed and aggregated together); this "
            "one has 4. Split it into several reports."
        ]
    }
    assert not Report.objects.exists() and not Receipt.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"receipts": []},
        {"receipts": "QUJD"},
        {"receipts": [{"receipt": "QUJD"}]},
        {"receipts": [["QUJD", "QUJD"]]},
        {"aggregates": [{"receipts": [], "signature": ""}]},
        {"aggregates": [{"signature": ""}]},
        {"receipts": [{"receipt": "A" * 5000, "signature": ""}]},
        [1, 2, 3],
    ],
)
def test_a_malformed_report_is_a_400_and_stores_nothing(uploader, body):
    response = submit(uploader, body)
    assert response.status_code == 400, response.content
    assert not Report.objects.exists() and not Receipt.objects.exists()


def test_invalid_json_is_a_400(uploader):
    response = api_for(uploader.member).post(
        "/report", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert not Report.objects.exists()


def test_user_id_of_someone_else_is_refused(uploader, downloader, swarm):
    body = {
        "user_id": downloader.member.username,
        "receipts": [single(make_receipt(uploader, downloader, swarm), downloader)],
    }
    response = submit(uploader, body)
    assert response.status_code == 403 and "user_id" in response.json()
    assert not Report.objects.exists()


def test_reports_need_a_token(uploader, downloader, swarm):
    body = {"receipts": [single(make_receipt(uploader, downloader, swarm), downloader)]}
    assert post_json(api_for(None), "/report", body).status_code == 401
    assert not Report.objects.exists()


def test_a_report_of_bytes_made_for_the_exact_piece_passes_every_check(uploader, downloader, swarm):
    """A report mixing every kind of entry stores one row per entry."""
    entries = [
        single(make_receipt(uploader, downloader, swarm, index=i), downloader) for i in range(3)
    ]
    entries.append({"receipt": "!", "signature": "!"})
    response = submit(uploader, {"receipts": entries})
    assert [s for s, _ in statuses(response)] == ["queued"] * 3 + ["refused"]
    assert Receipt.objects.count() == 4
    report = Report.objects.get()
    assert (report.received, report.queued, report.refused, report.status) == (4, 3, 1, "pending")


def test_a_fully_refused_report_is_done_at_once(uploader):
    response = submit(uploader, {"receipts": [{"receipt": "", "signature": ""}]})
    assert response.json()["status"] == "done"
    assert Report.objects.get().status == "done"


def test_the_clients_one_aggregate_form_is_accepted(uploader, downloader, swarm):
    entries = [(make_receipt(uploader, downloader, swarm, index=i), downloader) for i in (0, 1)]
    signed = group(entries)
    body = {
        "receipts": [{"receipt": text} for text in signed["receipts"]],
        "aggregate_signature": signed["signature"],
    }
    response = submit(uploader, body)
    assert response.status_code == 202
    [agg] = response.json()["aggregates"]
    assert agg["status"] == "queued" and len(agg["receipts"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"receipts": [{"receipt": "QUJD", "signature": "QUJD"}], "aggregate_signature": ""},
            "receipts",
        ),
        (
            {"receipts": ["QUJD"], "aggregate_signature": "", "aggregates": []},
            "aggregate_signature",
        ),
        ({"receipts": "QUJD", "aggregate_signature": ""}, "aggregates"),
    ],
)
def test_the_one_aggregate_form_refuses_mixed_input(uploader, body, field):
    response = submit(uploader, body)
    assert response.status_code == 400 and field in response.json()
    assert not Report.objects.exists()


def test_a_refused_copy_does_not_block_a_good_one_in_the_same_report(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    broken = {"receipt": b64(data), "signature": "not base64"}
    response = submit(uploader, {"receipts": [broken, single(data, downloader)]})
    assert [s for s, _ in statuses(response)] == ["refused", "queued"]
