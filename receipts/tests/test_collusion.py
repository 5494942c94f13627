"""Issue 13, part 3: what two colluding members could mint before, each attack now failing.

The attack seen on 2026-12-03: an uploader registered a torrent of huge pieces and had a
"downloader" sign every piece again every minute (the time bucket is part of a receipt's
identity), a second uploader who never announced was credited too, nothing capped the credit,
and /report was not throttled.
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from receipts import format as receipt_format
from receipts.models import Receipt, Status
from receipts.services.verify import receipt_batch_verify
from receipts.tests.conftest import (
    PIECE,
    api_for,
    make_actor,
    make_receipt,
    post_json,
    seen,
    single,
)
from reputation.models import Ledger

pytestmark = pytest.mark.django_db
BUCKET = receipt_format.TIME_BUCKET_SECONDS


def submit(reporter, receipts):
    return post_json(api_for(reporter.member), "/report", {"receipts": receipts})


def statuses(response) -> list[tuple[str, str]]:
    assert response.status_code == 202, response.content
    return [(r["status"], r["reason"]) for r in response.json()["receipts"]]


def test_re_signing_a_piece_every_minute_credits_it_once(uploader, downloader, swarm):
    now = time.time()
    minutes = [
        make_receipt(uploader, downloader, swarm, index=0, when=now - 60 * i) for i in range(5)
    ]
    first = statuses(submit(uploader, [single(minutes[0], downloader)]))
    assert first == [("queued", "")]
    later = statuses(submit(uploader, [single(data, downloader) for data in minutes[1:]]))
    assert all(status == "refused" for status, _ in later), later
    assert later[0][1].startswith("duplicate piece: the downloader was already credited")
    assert all(reason.startswith("duplicate piece") for _, reason in later)
    receipt_batch_verify()
    assert Ledger.objects.get(member=uploader.member).verified_uploaded == PIECE


def test_the_same_piece_in_one_report_at_two_times_is_credited_once(uploader, downloader, swarm):
    now = time.time()
    a = make_receipt(uploader, downloader, swarm, index=1, when=now)
    b = make_receipt(uploader, downloader, swarm, index=1, when=now - 120)
    result = statuses(submit(uploader, [single(a, downloader), single(b, downloader)]))
    assert result[0] == ("queued", "")
    assert result[1] == (
        "refused",
        "duplicate piece: receipts[0] of this report names the same downloader and piece",
    )


def test_a_second_uploader_cannot_be_credited_for_a_piece_already_credited(
    uploader, downloader, swarm
):
    other = make_actor()
    seen(other.member, swarm)
    assert (
        statuses(submit(uploader, [single(make_receipt(uploader, downloader, swarm), downloader)]))[
            0
        ][0]
        == "queued"
    )
    again = statuses(submit(other, [single(make_receipt(other, downloader, swarm), downloader)]))
    assert again[0][0] == "refused" and again[0][1].startswith("duplicate piece")


def test_an_uploader_who_never_announced_is_not_credited(uploader, downloader, torrent):
    seen(downloader.member, torrent)  # the downloader was there; the uploader never was
    result = statuses(
        submit(uploader, [single(make_receipt(uploader, downloader, torrent), downloader)])
    )
    assert result == [
        ("refused", "uploader: you were not seen in this torrent's swarm around that time")
    ]


def test_credit_per_member_and_minute_is_bounded_by_the_rate(uploader, swarm, settings):
    # 3 pieces of 16 KiB fit in a bucket at this rate, the 4th does not.
    settings.PBTS_MAX_CREDIT_RATE = 3 * PIECE // BUCKET + 1
    sybils = [make_actor() for _ in range(4)]
    for sybil in sybils:
        seen(sybil.member, swarm)
    bucket = int(time.time()) // BUCKET
    entries = [
        single(make_receipt(uploader, sybil, swarm, index=0, bucket=bucket), sybil)
        for sybil in sybils
    ]
    result = statuses(submit(uploader, entries))
    assert [s for s, _ in result] == ["queued", "queued", "queued", "refused"]
    assert result[3][1].startswith("rate: more than")
    assert "to the uploader in one 60-second time bucket" in result[3][1]
    # The next minute has room again.
    later = single(make_receipt(uploader, sybils[3], swarm, index=0, bucket=bucket - 1), sybils[3])
    assert statuses(submit(uploader, [later])) == [("queued", "")]


def test_a_refused_receipt_frees_its_room_in_the_bucket(uploader, downloader, swarm, settings):
    settings.PBTS_MAX_CREDIT_RATE = PIECE // BUCKET + 1  # one piece per bucket
    bucket = int(time.time()) // BUCKET
    forged = make_receipt(uploader, downloader, swarm, index=0, bucket=bucket)
    bad = {
        "receipt": single(forged, downloader)["receipt"],
        "signature": single(forged, uploader)["signature"],
    }
    assert statuses(submit(uploader, [bad])) == [("queued", "")]
    receipt_batch_verify()  # the forged signature is refused; its bytes no longer count
    assert Receipt.objects.get().status == Status.REFUSED
    good = make_receipt(uploader, downloader, swarm, index=1, bucket=bucket)
    assert statuses(submit(uploader, [single(good, downloader)])) == [("queued", "")]


def test_report_is_throttled_per_member(uploader, downloader, swarm, monkeypatch):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import ScopedRateThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "reports": "2/hour"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    codes = [
        submit(
            uploader, [single(make_receipt(uploader, downloader, swarm, index=i), downloader)]
        ).status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]


def test_a_downloader_that_only_seeded_cannot_sign_for_credit(uploader, downloader, torrent):
    # The "downloader" had only announced as a seeder (left = 0): never leeching, no credit.
    from tracker.models import TorrentHistory

    seen(uploader.member, torrent)
    TorrentHistory.objects.create(member=downloader.member, torrent=torrent)  # leeched_at None
    result = statuses(
        submit(uploader, [single(make_receipt(uploader, downloader, torrent), downloader)])
    )
    assert result == [
        ("refused", "downloader: not seen leeching (left > 0) this torrent around that time")
    ]
