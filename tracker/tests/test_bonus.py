"""Bonus points on the tracker's side (docs/bonus.md): earning from the seeding the statistics
flush recorded (idempotent, bounded by wall-clock time), the store (upload credit for the
site's ratio only; freeleech tokens honoured by the flush, end to end through the announce
view), the API with its refusals, the page, the admin adjustment and the profile block."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from chain.models import ChainMember
from chain.waiting import ledgers_waiting_for_push
from core.models import AuditLog
from reputation.models import BonusAccount, BonusKind, BonusTransaction, Ledger
from reputation.policy import GIB
from reputation.services import MILLI, bonus_credit_earned, ledger_credit_verified
from tracker import announce_runtime, authcache
from tracker.announce.records import Credit, StatsBatch
from tracker.models import (
    BonusSeeding,
    ClientPrefix,
    FreeleechToken,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services.bonus import bonus_award_seeding, torrent_points_per_hour
from tracker.services.stats import stats_flush
from tracker.tasks import award_bonus
from tracker.tests import test_announce
from tracker.tests.factories import MemberFactory
from tracker.tests.test_announce import announce
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db
HOUR = 3600


def seed(member, torrent, seconds: int, *, up: int = 0, down: int = 0) -> None:
    """What the statistics flush applies after announces: ``seconds`` of seeding."""
    credit = Credit(uploaded=up, downloaded=down, seed_seconds=seconds)
    assert stats_flush(batch=StatsBatch(credits={(member.pk, torrent.pk): credit}))


def balance(member) -> int:
    row = BonusAccount.objects.filter(member=member).first()
    return row.balance if row else 0


def give_points(member, points: float) -> None:
    bonus_credit_earned(amounts={member.pk: int(points * MILLI)}, reference="test")


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def seeding(t0):
    """A member who started seeding an 8 GiB, 90-day-old torrent with 2 seeders at ``t0``."""
    member = MemberFactory()
    torrent = upload_torrent(MemberFactory())
    Torrent.objects.filter(pk=torrent.pk).update(
        size=8 * GIB, seeders=2, created_at=t0 - timedelta(days=90)
    )
    seed(member, torrent, 0)
    TorrentHistory.objects.filter(member=member, torrent=torrent).update(created_at=t0)
    torrent.refresh_from_db()
    return member, torrent


# --- earning ----------------------------------------------------------------------------------


def test_an_hour_of_seeding_earns_the_formula_once(seeding, t0):
    member, torrent = seeding
    seed(member, torrent, HOUR)
    now = t0 + timedelta(hours=1)
    result = bonus_award_seeding(now=now)
    expected = int(torrent_points_per_hour(torrent, now=now) * MILLI)
    assert 4840 <= expected <= 4860  # the docs' worked example: about 4.85 points
    assert (result.pairs, result.members, result.seconds) == (1, 1, HOUR)
    assert balance(member) == result.millipoints == expected
    # Running again (at once, or later without new seeding) awards nothing more.
    assert bonus_award_seeding(now=now).pairs == 0
    assert bonus_award_seeding(now=now + timedelta(hours=5)).pairs == 0
    assert award_bonus() == 0
    assert balance(member) == expected
    tx = BonusTransaction.objects.get(member=member)
    assert (tx.kind, tx.amount, tx.balance_after, tx.reference) == (
        BonusKind.EARN,
        expected,
        expected,
        "seeding",
    )
    # New seeding is awarded on its own: half an hour more.
    seed(member, torrent, HOUR // 2)
    later = t0 + timedelta(hours=2)
    bonus_award_seeding(now=later)
    half = int(torrent_points_per_hour(torrent, now=later) * MILLI / 2)
    assert abs(balance(member) - expected - half) <= 1
    state = BonusSeeding.objects.get(member=member, torrent=torrent)
    assert (state.counted_seconds, state.paid_seconds) == (HOUR + HOUR // 2,) * 2


def test_seeding_beyond_wall_clock_time_is_never_paid(seeding, t0):
    """Three peers of one member on one torrent are each credited by the flush: 3 hours of
    seeding per hour. The award pays at most the hours that passed plus the slack."""
    member, torrent = seeding
    slack = settings.PBTS_BONUS_SLACK_SECONDS
    for hour in range(1, 7):
        seed(member, torrent, 3 * HOUR)
        result = bonus_award_seeding(now=t0 + timedelta(hours=hour))
        assert result.seconds + result.seconds_refused == 3 * HOUR
        state = BonusSeeding.objects.get(member=member, torrent=torrent)
        assert state.counted_seconds == 3 * HOUR * hour
        assert state.paid_seconds <= hour * HOUR + slack
    assert state.paid_seconds == 6 * HOUR + slack
    # Refused seconds are not carried over: stopping does not let them be paid later.
    assert bonus_award_seeding(now=t0 + timedelta(hours=20)).pairs == 0
    assert BonusSeeding.objects.get(pk=state.pk).paid_seconds == 6 * HOUR + slack


def test_honest_seeding_reported_late_is_paid_in_full(seeding, t0):
    """Seeding credited in uneven lumps (announces every 30 minutes, flushed around the
    award's runs) is paid in full: the slack absorbs the lag."""
    member, torrent = seeding
    minutes = 0
    for lump in (45, 15, 90, 30, 60, 0, 120):
        minutes += 60
        seed(member, torrent, lump * 60)
        bonus_award_seeding(now=t0 + timedelta(minutes=minutes))
    state = BonusSeeding.objects.get(member=member, torrent=torrent)
    assert state.paid_seconds == state.counted_seconds == 360 * 60


def test_torrents_that_are_not_approved_earn_nothing(seeding, t0):
    member, torrent = seeding
    seed(member, torrent, HOUR)
    Torrent.objects.filter(pk=torrent.pk).update(status=TorrentStatus.DELETED)
    assert bonus_award_seeding(now=t0 + timedelta(hours=1)).pairs == 0
    assert balance(member) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_award_runs_award_once(seeding, t0):
    member, torrent = seeding
    seed(member, torrent, HOUR)
    now = t0 + timedelta(hours=1)
    workers = 4
    barrier = threading.Barrier(workers)
    results = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(bonus_award_seeding(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.pairs for r in results) == [0, 0, 0, 1]
    assert balance(member) == int(torrent_points_per_hour(torrent, now=now) * MILLI)
    assert BonusTransaction.objects.filter(member=member).count() == 1


def test_beat_schedules_the_award():
    entry = settings.CELERY_BEAT_SCHEDULE["tracker.award_bonus"]
    assert entry == {"task": "tracker.award_bonus", "schedule": settings.PBTS_BONUS_AWARD_SECONDS}


# --- the store: upload credit -------------------------------------------------------------


def api_for(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member)
    return client


def test_upload_credit_counts_for_the_ratio_only_never_for_verified_or_chain_figures(
    django_capture_on_commit_callbacks,
):
    member = MemberFactory()
    ledger_credit_verified(uploaded={member.pk: 500}, downloaded={member.pk: 200})
    Ledger.objects.filter(member=member).update(uploaded=1000, downloaded=4000)
    ChainMember.objects.create(
        member=member,
        record_id=b"\x01" * 32,
        public_key=b"\x02" * 48,
        pushed_uploaded=500,
        pushed_downloaded=200,
        pushed_at=timezone.now(),
    )
    assert not ledgers_waiting_for_push(member_ids=[member.pk]).exists()
    assert authcache.member_standing(member.passkey).uploaded == 1000  # cached now
    give_points(member, 150)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(member).post("/api/v1/bonus/spend/", {"item": "upload"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"item": "upload", "spent": 100.0, "balance": 50.0}
    ledger = Ledger.objects.get(member=member)
    assert ledger.bonus_uploaded == GIB
    assert (ledger.uploaded, ledger.downloaded) == (1000, 4000)
    assert (ledger.verified_uploaded, ledger.verified_downloaded) == (500, 200)
    assert (ledger.imported_uploaded, ledger.imported_downloaded) == (0, 0)
    assert not ledgers_waiting_for_push(member_ids=[member.pk]).exists()
    # The announce path's standing (its cache entry was dropped) counts it.
    assert authcache.member_standing(member.passkey).uploaded == 1000 + GIB
    me = api_for(member).get("/api/v1/me/").json()
    assert me["uploaded"] == 1000 and me["ratio"] == pytest.approx((1000 + GIB) / 4000)
    # Control: a verified credit does make the member wait for a push.
    ledger_credit_verified(uploaded={member.pk: 1}, downloaded={})
    assert ledgers_waiting_for_push(member_ids=[member.pk]).exists()


clock = test_announce.clock  # the fake clock fixture of the announce tests


@pytest.fixture
def swarm(clock):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher, other = MemberFactory(), MemberFactory(), MemberFactory()
    torrent = upload_torrent(seeder)
    return torrent, seeder, leecher, other


@override_settings(PBTS_RATIO_GRACE_BYTES=0, PBTS_BONUS_UPLOAD_GIB=6)
def test_bought_upload_lifts_the_ratio_refusal_at_the_announce(
    client, swarm, django_capture_on_commit_callbacks
):
    torrent, _seeder, leecher, _ = swarm
    Ledger.objects.filter(member=leecher).update(uploaded=0, downloaded=10 * GIB)
    announce_runtime.policy.cache_clear()
    try:
        refused = announce(client, leecher, torrent, left=500)
        assert refused == {b"failure reason": b"Downloading disabled: ratio 0.00 is below 0.50"}
        give_points(leecher, 100)
        with django_capture_on_commit_callbacks(execute=True):
            response = api_for(leecher).post("/api/v1/bonus/spend/", {"item": "upload"})
        assert response.status_code == 201
        assert b"peers" in announce(client, leecher, torrent, left=500)  # 6 / 10 = 0.60
    finally:
        announce_runtime.policy.cache_clear()


# --- the store: freeleech tokens, end to end through the announce view and the flush ----------


def test_freeleech_token_zeroes_the_download_until_it_expires(client, swarm, clock):
    torrent, seeder, leecher, other = swarm
    give_points(leecher, 300)
    response = api_for(leecher).post(
        "/api/v1/bonus/spend/", {"item": "freeleech", "torrent": torrent.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    token = FreeleechToken.objects.get(member=leecher, torrent=torrent)
    assert token.expires_at - token.created_at == timedelta(hours=24)
    announce(client, seeder, torrent, left=0)
    announce(client, leecher, torrent, ip="127.0.0.2", left=5000)
    announce(client, other, torrent, ip="127.0.0.3", left=5000)
    clock.now += 1000
    announce(client, seeder, torrent, uploaded=2000, left=0, event="")
    announce(client, leecher, torrent, ip="127.0.0.2", downloaded=1000, left=4000, event="")
    announce(client, other, torrent, ip="127.0.0.3", downloaded=1000, left=4000, event="")
    assert announce_runtime.flush_now() is True

    def downloaded(member) -> tuple[int, int]:
        history = TorrentHistory.objects.get(member=member, torrent=torrent)
        return history.downloaded, Ledger.objects.get(member=member).downloaded

    assert downloaded(leecher) == (0, 0)  # the token
    assert downloaded(other) == (1000, 1000)  # no token: counted
    assert Ledger.objects.get(member=seeder).uploaded == 2000  # upload is untouched
    # Once the token has expired, the download counts again.
    FreeleechToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    clock.now += 1000
    announce(client, leecher, torrent, ip="127.0.0.2", downloaded=3500, left=1500, event="")
    assert announce_runtime.flush_now() is True
    assert downloaded(leecher) == (2500, 2500)


# --- the API: reads and refusals -----------------------------------------------------------


def test_api_lists_balance_transactions_tokens_and_items():
    member = MemberFactory()
    give_points(member, 12.5)
    body = api_for(member).get("/api/v1/bonus/").json()
    assert body["balance"] == 12.5
    assert [(t["kind"], t["amount"]) for t in body["transactions"]] == [("earn", 12.5)]
    assert body["tokens"] == []
    assert {item["key"]: item["points"] for item in body["items"]} == {
        "upload": settings.PBTS_BONUS_UPLOAD_COST,
        "freeleech": settings.PBTS_BONUS_TOKEN_COST,
    }


def test_api_refusals_name_the_field_and_spend_nothing():
    member = MemberFactory()
    approved = upload_torrent(MemberFactory())
    pending = upload_torrent(MemberFactory())
    Torrent.objects.filter(pk=pending.pk).update(status=TorrentStatus.PENDING)
    everyone = upload_torrent(MemberFactory())
    Torrent.objects.filter(pk=everyone.pk).update(is_freeleech=True)
    api = api_for(member)

    def spend(**body):
        response = api.post("/api/v1/bonus/spend/", body, format="json")
        assert response.status_code == 400, response.content
        (field,) = response.json()
        return field, response.json()[field][0]

    assert spend(item="upload")[0] == "item"  # no points at all
    give_points(member, 1000)
    assert spend(item="gold")[0] == "item"
    assert spend()[0] == "item"
    assert spend(item="freeleech") == ("torrent", "Choose the torrent the token is for.")
    assert spend(item="freeleech", torrent=10**9)[0] == "torrent"
    assert spend(item="freeleech", torrent=pending.pk)[0] == "torrent"
    assert spend(item="freeleech", torrent=everyone.pk)[0] == "torrent"
    assert spend(item="freeleech", torrent="abc")[0] == "torrent"
    assert spend(item="freeleech", torrent=-1)[0] == "torrent"
    assert balance(member) == 1000 * MILLI
    ok = api.post("/api/v1/bonus/spend/", {"item": "freeleech", "torrent": approved.pk})
    assert ok.status_code == 201
    field, message = spend(item="freeleech", torrent=approved.pk)
    assert field == "torrent" and "already active" in message
    assert balance(member) == 750 * MILLI  # charged once
    give_points(MemberFactory(), 1)  # another member's points do not help
    poor = MemberFactory()
    give_points(poor, 99.999)
    response = api_for(poor).post("/api/v1/bonus/spend/", {"item": "upload"}, format="json")
    assert response.status_code == 400 and "Not enough points" in response.json()["item"][0]


def test_api_needs_a_member_in_good_standing():
    assert APIClient().get("/api/v1/bonus/").status_code in (401, 403)
    banned = MemberFactory()
    give_points(banned, 500)
    banned.is_banned = True
    banned.save(update_fields=["is_banned"])
    response = api_for(banned).post("/api/v1/bonus/spend/", {"item": "upload"}, format="json")
    assert response.status_code == 403
    assert balance(banned) == 500 * MILLI


def test_endpoints_are_in_the_openapi_schema():
    response = api_for(MemberFactory()).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "get" in paths["/api/v1/bonus/"]
    assert "post" in paths["/api/v1/bonus/spend/"]


# --- the page, the profile block, the admin ----------------------------------------------------


def test_bonus_page_buys_and_shows_refusals_as_form_errors():
    member = MemberFactory()
    torrent = upload_torrent(MemberFactory())
    client = Client()
    assert client.get("/bonus/").status_code == 302  # login first
    client.force_login(member)
    page = client.get("/bonus/")
    assert page.status_code == 200 and b'id="bonus-balance">0.000<' in page.content
    refused = client.post("/bonus/", {"item": "upload"})
    assert refused.status_code == 400 and b"Not enough points" in refused.content
    give_points(member, 400)
    bought = client.post("/bonus/", {"item": "freeleech", "torrent": str(torrent.pk)}, follow=True)
    assert bought.status_code == 200 and b"Bought" in bought.content
    assert torrent.name.encode() in bought.content  # the active token is listed
    again = client.post("/bonus/", {"item": "freeleech", "torrent": str(torrent.pk)})
    assert again.status_code == 400 and b"already active" in again.content
    assert client.post("/bonus/", {"item": "freeleech", "torrent": "x"}).status_code == 400
    assert balance(member) == 150 * MILLI


def test_profile_shows_the_balance_to_the_member_and_staff_only():
    member, other, staff = MemberFactory(), MemberFactory(), MemberFactory(is_staff=True)
    give_points(member, 42)
    client = Client()
    client.force_login(member)
    assert b"Bonus points" in client.get("/profile/").content
    client.force_login(other)
    assert b"Bonus points" not in client.get(f"/members/{member.username}/").content
    client.force_login(staff)
    page = client.get(f"/members/{member.username}/").content
    assert b"Bonus points" in page and b"42.000" in page


@override_settings(PBTS_STAFF_REQUIRE_2FA=False)
def test_admin_adjustment_action_is_audited_and_transactions_are_read_only():
    staff, member = MemberFactory(is_staff=True), MemberFactory()
    give_points(member, 1)
    client = Client()
    client.force_login(staff)
    url = "/admin/reputation/bonusaccount/"
    form = {"action": "adjust", "_selected_action": [str(member.pk)]}
    asked = client.post(url, form)
    assert asked.status_code == 200 and b"reason" in asked.content
    done = client.post(url, {**form, "apply": "yes", "points": "2.5", "reason": "prize"})
    assert done.status_code == 302
    assert balance(member) == 3500
    assert AuditLog.objects.filter(action="bonus_adjust", actor=staff).count() == 1
    tx = BonusTransaction.objects.get(kind=BonusKind.ADJUST)
    assert client.get(f"/admin/reputation/bonustransaction/{tx.pk}/change/").status_code == 200
    assert client.get("/admin/reputation/bonustransaction/add/").status_code == 403
    deleted = client.post(f"/admin/reputation/bonustransaction/{tx.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403 and BonusTransaction.objects.filter(pk=tx.pk).exists()
