"""The HTTP announce and scrape endpoints with the real cache (Redis) and PostgreSQL."""

import ipaddress
from urllib.parse import quote_from_bytes

import fastbencode
import pytest
from django.conf import settings
from django.test import override_settings

from reputation.models import Ledger
from tracker import announce_runtime
from tracker.announce.records import Credit
from tracker.models import ClientPrefix, Torrent, TorrentHistory
from tracker.services import members
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """A fake clock and a fresh runtime shared through the real Redis (test settings)."""
    clock = Clock()
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(clock=clock))
    return clock


@pytest.fixture
def swarm(clock):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher = MemberFactory(), MemberFactory()
    torrent = upload_torrent(seeder)
    return torrent, seeder, leecher


def announce(client, member, torrent, *, peer=b"-TR4060-", ip="127.0.0.1", path=True, **params):
    headers = {k: params.pop(k) for k in list(params) if k.startswith("HTTP_")}
    values = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": peer.ljust(20, b"x"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": b"0",
        "event": b"started",
    }
    values.update({k: v if isinstance(v, bytes) else str(v).encode() for k, v in params.items()})
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in values.items())
    if path:
        url = f"/announce/{member.passkey}?{query}"
    else:
        url = f"/announce?passkey={member.passkey}&{query}"
    response = client.get(url, REMOTE_ADDR=ip, **headers)
    assert response.status_code == 200
    return fastbencode.bdecode(response.content)


def test_seeder_and_leecher_find_each_other_and_get_credited(client, swarm, clock):
    torrent, seeder, leecher = swarm
    first = announce(client, seeder, torrent, left=0)
    assert first[b"peers"] == b"" and first[b"complete"] == 1
    reply = announce(client, leecher, torrent, ip="127.0.0.2", left=1000, path=False)
    assert reply[b"peers"] == bytes([127, 0, 0, 1]) + (51413).to_bytes(2, "big")
    assert 1800 <= reply[b"interval"] <= 1980 and reply[b"min interval"] == 900
    clock.now += 1000
    announce(client, seeder, torrent, uploaded=1000, left=0, event="")
    announce(client, leecher, torrent, ip="127.0.0.2", downloaded=1000, event="completed")
    assert announce_runtime.flush_now() is True
    assert Ledger.objects.get(member=seeder).uploaded == 1000
    assert Ledger.objects.get(member=leecher).downloaded == 1000
    torrent.refresh_from_db()
    assert (torrent.seeders, torrent.leechers, torrent.snatches) == (2, 0, 1)
    history = TorrentHistory.objects.get(member=leecher, torrent=torrent)
    assert history.completed_at is not None and history.downloaded == 1000
    # The leecher leeched (left > 0): receipts naming it as downloader need that.
    assert history.leeched_at is not None
    assert TorrentHistory.objects.get(member=seeder, torrent=torrent).leeched_at is None


def test_an_absurd_counter_is_credited_only_up_to_the_rate_and_flagged(client, swarm, clock):
    # The attack of 2026-12-03: uploaded=2**63-1 was credited in full.
    torrent, seeder, _ = swarm
    announce(client, seeder, torrent, left=0)
    clock.now += 1000
    announce(client, seeder, torrent, uploaded=2**63 - 1, left=0, event="")
    assert announce_runtime.flush_now() is True
    ledger = Ledger.objects.get(member=seeder)
    assert ledger.uploaded == 1000 * settings.PBTS_MAX_CREDIT_RATE  # 1000 s at the bound
    assert ledger.clamped_announces == 1 and ledger.clamped_at is not None


def test_a_completed_that_finishes_nothing_does_not_skip_min_interval(client, swarm, clock):
    torrent, seeder, leecher = swarm
    announce(client, leecher, torrent, left=1000)
    clock.now += 60
    done = announce(client, leecher, torrent, left=0, downloaded=1000, event="completed")
    assert b"failure reason" not in done  # the real completion, sent at once, passes
    clock.now += 60
    again = announce(client, leecher, torrent, left=0, uploaded=10**9, event="completed")
    assert again[b"failure reason"] == b"Announce too soon"
    announce(client, seeder, torrent, left=0)
    clock.now += 60
    seeding = announce(client, seeder, torrent, left=0, uploaded=10**9, event="completed")
    assert seeding[b"failure reason"] == b"Announce too soon"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("bad_passkey", b"Unknown passkey"),
        ("banned", b"Account banned"),
        ("client", b"Client not allowed"),
        ("port", b"Port 6699 is blacklisted"),
        ("torrent", b"Unregistered torrent"),
    ],
)
def test_refusals_are_bencoded_failures(client, swarm, change, reason):
    torrent, seeder, _ = swarm
    peer, port = b"-TR4060-", 51413
    if change == "bad_passkey":
        seeder.passkey = "0" * 32
    elif change == "banned":
        members.member_ban(member=seeder, actor=MemberFactory(is_staff=True), reason="test")
    elif change == "client":
        peer = b"-XX0001-"
    elif change == "port":
        port = 6699
    elif change == "torrent":
        torrent.info_hash = "ab" * 20
    reply = announce(client, seeder, torrent, peer=peer, port=port)
    assert reply == {b"failure reason": reason}


def test_old_passkey_is_refused_right_after_reset(client, swarm):
    torrent, seeder, _ = swarm
    assert b"peers" in announce(client, seeder, torrent)
    old = seeder.passkey
    members.passkey_reset(member=seeder)
    seeder.passkey = old
    assert announce(client, seeder, torrent, peer=b"-TR4060-new") == {
        b"failure reason": b"Unknown passkey"
    }


@override_settings(PBTS_RATIO_GRACE_BYTES=0)
def test_leeching_below_min_ratio_is_refused_with_figures_but_seeding_allowed(client, swarm):
    torrent, _seeder, leecher = swarm
    Ledger.objects.filter(member=leecher).update(uploaded=31, downloaded=100)
    announce_runtime.policy.cache_clear()
    try:
        reply = announce(client, leecher, torrent, left=500)
        assert reply == {b"failure reason": b"Downloading disabled: ratio 0.31 is below 0.50"}
        assert b"peers" in announce(client, leecher, torrent, left=0, peer=b"-TR4060-seed")
    finally:
        announce_runtime.policy.cache_clear()


def test_announce_too_soon_is_refused(client, swarm):
    torrent, seeder, _ = swarm
    announce(client, seeder, torrent)
    reply = announce(client, seeder, torrent, event="")
    assert reply == {b"failure reason": b"Announce too soon"}


def test_browser_request_gets_bencoded_failure_and_changes_nothing(client, swarm):
    _torrent, seeder, _ = swarm
    response = client.get(f"/announce/{seeder.passkey}", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert fastbencode.bdecode(response.content) == {b"failure reason": b"Missing info_hash"}
    assert announce_runtime.peer_store().take_batch().credits == {}


def test_warm_announce_makes_no_database_query(client, swarm, django_assert_num_queries):
    torrent, seeder, leecher = swarm
    announce(client, seeder, torrent)
    announce(client, leecher, torrent, left=10, peer=b"-TR4060-warm")
    with django_assert_num_queries(0):
        announce(client, leecher, torrent, left=10)


def test_forwarded_for_counts_only_from_a_trusted_proxy(client, swarm):
    torrent, seeder, leecher = swarm
    announce(client, seeder, torrent, ip="10.0.0.1", left=0)
    forwarded = {"HTTP_X_FORWARDED_FOR": "10.9.9.9, 127.0.0.9"}
    reply = announce(client, leecher, torrent, left=10, ip="127.0.0.8", **forwarded)
    assert reply[b"peers"][:4] == bytes([10, 0, 0, 1])  # untrusted: header ignored
    with override_settings(PBTS_TRUSTED_PROXIES=["127.0.0.9"]):
        peer = b"-TR4060-proxied"
        announce(client, leecher, torrent, left=10, ip="127.0.0.9", peer=peer, **forwarded)
    pool = announce_runtime.peer_store()._swarms[torrent.pk].leeches
    addresses = {bytes(pool.addrs[i : i + 4]) for i in range(0, len(pool.addrs), 6)}
    assert bytes([10, 9, 9, 9]) in addresses and bytes([127, 0, 0, 9]) not in addresses


def test_bep7_address_of_someone_else_never_enters_the_swarm(client, swarm):
    """Issue 14: an IPv4 client's ``ipv6=`` put a third party's address into swarms. It is
    ignored (the announce still succeeds); a client over IPv6 naming its own address is fine."""
    torrent, seeder, leecher = swarm
    victim = "2a00:1450::1"
    reply = announce(client, seeder, torrent, ip="10.0.0.1", left=0, ipv6=victim)
    assert b"failure reason" not in reply and reply[b"complete"] == 1
    reply = announce(client, leecher, torrent, ip="2a00:1450::99", left=10, ipv4="10.0.0.7")
    assert reply.get(b"peers6", b"") == b""  # no IPv6 address for the IPv4 seeder
    assert reply[b"peers"] == bytes([10, 0, 0, 1]) + (51413).to_bytes(2, "big")
    pool = announce_runtime.peer_store()._swarms[torrent.pk].leeches
    assert bytes([10, 0, 0, 7]) not in pool.addrs  # nor the IPv6 leecher's ipv4=
    own = "2a00:1450::2"
    peer = b"-TR4060-six"
    announce(client, seeder, torrent, ip=own, left=0, peer=peer, ipv6=f"[{own}]:6000")
    reply = announce(client, MemberFactory(), torrent, ip="2a00:1450::98", left=10)
    peers6 = {reply[b"peers6"][i : i + 18] for i in range(0, len(reply[b"peers6"]), 18)}
    assert ipaddress.ip_address(own).packed + (6000).to_bytes(2, "big") in peers6
    assert not any(entry[:16] == ipaddress.ip_address(victim).packed for entry in peers6)


def test_scrape_lists_registered_torrents_only(client, swarm):
    torrent, seeder, leecher = swarm
    announce(client, seeder, torrent, left=0)
    announce(client, leecher, torrent, left=10, ip="127.0.0.2")
    hashes = [bytes.fromhex(torrent.info_hash), b"\x01" * 20]
    query = "&".join(f"info_hash={quote_from_bytes(h, safe='')}" for h in hashes)
    response = client.get(f"/scrape/{seeder.passkey}?{query}")
    files = fastbencode.bdecode(response.content)[b"files"]
    assert files == {hashes[0]: {b"complete": 1, b"downloaded": 0, b"incomplete": 1}}
    bad = client.get(f"/scrape/{'0' * 32}?{query}")
    assert fastbencode.bdecode(bad.content) == {b"failure reason": b"Unknown passkey"}


def test_redis_flush_that_dies_is_rerun_and_a_batch_applies_once(client, swarm, clock, monkeypatch):
    torrent, seeder, _ = swarm
    announce(client, seeder, torrent, left=0)
    clock.now += 1000
    announce(client, seeder, torrent, left=0, uploaded=700, event="")

    from tracker.services import stats

    real_credit = stats.ledger_credit_announced

    def boom(*, totals):
        raise RuntimeError("database went away mid-flush")

    monkeypatch.setattr(stats, "ledger_credit_announced", boom)
    with pytest.raises(RuntimeError):
        announce_runtime.flush_now()
    assert Ledger.objects.get(member=seeder).uploaded == 0
    assert not TorrentHistory.objects.exists()
    queue = announce_runtime.runtime().queue
    (batch_id,) = queue.pending()  # the claimed batch waits in Redis

    monkeypatch.setattr(stats, "ledger_credit_announced", real_credit)
    batch = queue.read(batch_id)
    assert batch.credits == {(seeder.pk, torrent.pk): Credit(700, 0, 1000, False)}
    assert stats.stats_flush(batch=batch) is True  # died after commit, before forgetting ...
    assert announce_runtime.flush_now() is False  # ... so the re-run is a no-op, then forgotten
    assert queue.pending() == []
    assert Ledger.objects.get(member=seeder).uploaded == 700
    assert Ledger.objects.get(member=seeder).seeding_seconds == 1000
    assert Torrent.objects.get(pk=torrent.pk).seeders == 1


def test_in_process_flush_without_redis_returns_a_failed_batch(client, swarm, monkeypatch):
    torrent, seeder, _ = swarm
    clock = Clock()
    monkeypatch.setattr(
        announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url="", clock=clock)
    )
    announce(client, seeder, torrent, left=0)
    clock.now += 1000
    announce(client, seeder, torrent, left=0, uploaded=300, event="")

    from tracker.services import stats

    def boom(**kwargs):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(announce_runtime, "stats_flush", boom)
        with pytest.raises(RuntimeError):
            announce_runtime.flush_now()
    assert announce_runtime.flush_now() is True
    assert Ledger.objects.get(member=seeder).uploaded == 300
    assert (
        stats.stats_flush(batch=announce_runtime.peer_store().take_batch()) is True
    )  # empty batch


def test_two_processes_share_peers_and_a_cross_process_duplicate_credits_once(client, swarm, clock):
    torrent, seeder, _ = swarm
    first = announce_runtime.runtime()
    other = announce_runtime.build_runtime(clock=clock)  # a second worker process
    other.sync.load()
    announce(client, seeder, torrent, left=0)
    first.sync.sync()
    other.sync.sync()
    assert other.store.counts([torrent.pk]) == {torrent.pk: (1, 0)}
    clock.now += 1000
    # The IPv4 leg reaches this process, the IPv6 leg another one, before either pushed.
    announce(client, seeder, torrent, left=0, uploaded=500, event="")
    from tracker.announce.addresses import compact_address
    from tracker.announce.records import Announce, AnnounceRequest, Event, TorrentStanding

    c4, c6 = compact_address("::1", 51413)
    request = AnnounceRequest(
        info_hash=bytes.fromhex(torrent.info_hash),
        peer_id=b"-TR4060-".ljust(20, b"x"),
        port=51413,
        uploaded=500,
        downloaded=0,
        left=0,
        event=Event.NONE,
        numwant=None,
        compact=True,
        no_peer_id=False,
        key=b"",
        passkey=seeder.passkey,
        ipv4="",
        ipv6="",
    )
    standing = TorrentStanding(torrent.pk, False, False)
    other.store.announce(
        Announce(request, seeder.pk, c4, c6, standing), rules=announce_runtime.policy().rules
    )
    assert first.sync.sync().pushed == 1
    stats = other.sync.sync()
    assert stats.conflicts == 1
    announce_runtime.flush_now()
    assert Ledger.objects.get(member=seeder).uploaded == 500  # not 1000


def test_profile_shows_live_seeding_and_leeching_counts(client, swarm):
    torrent, seeder, _ = swarm
    announce(client, seeder, torrent, left=0)
    client.force_login(seeder)
    response = client.get("/profile/")
    assert response.status_code == 200
    stats = response.context["stats"]
    assert (stats.seeding, stats.leeching) == (1, 0)


def test_celery_flush_task_credits_and_skips_while_another_run_holds_the_lock(client, swarm, clock):
    from django.db import connections

    from tracker.tasks import FLUSH_LOCK_ID, flush_stats

    torrent, seeder, _ = swarm
    announce(client, seeder, torrent, left=0)
    clock.now += 1000
    announce(client, seeder, torrent, left=0, uploaded=64, event="")
    other = connections.create_connection("default")  # another worker's session
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [FLUSH_LOCK_ID])
        assert flush_stats.delay() is not None
        assert Ledger.objects.get(member=seeder).uploaded == 0  # the other run holds the lock
    finally:
        other.close()  # its session ends, and the lock with it
    flush_stats.delay()
    assert Ledger.objects.get(member=seeder).uploaded == 64


@pytest.mark.parametrize("redis_url", [None, ""], ids=["redis", "in-process"])
def test_a_first_announce_records_the_member_in_the_swarm_but_a_refused_one_does_not(
    client, swarm, monkeypatch, redis_url
):
    torrent, seeder, _ = swarm
    if redis_url is not None:
        monkeypatch.setattr(
            announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url=redis_url)
        )
    announce(client, seeder, torrent, left=0)  # no credit yet: a baseline
    blocked = MemberFactory()
    type(blocked).objects.filter(pk=blocked.pk).update(can_download=False)
    reply = announce(client, blocked, torrent, left=10, peer=b"-TR4060-blocked")
    assert b"Downloading disabled" in reply[b"failure reason"]
    announce_runtime.flush_now()
    seen = TorrentHistory.objects.get(member=seeder, torrent=torrent)
    assert (seen.uploaded, seen.downloaded, seen.seed_seconds) == (0, 0, 0)
    assert not TorrentHistory.objects.filter(member=blocked).exists()


def test_flush_recounts_snatches_only_for_torrents_with_a_new_snatch(client, swarm, clock):
    torrent, seeder, leecher = swarm
    announce(client, seeder, torrent, left=0)
    announce(client, leecher, torrent, left=10, peer=b"-TR4060-leech")
    announce_runtime.flush_now()
    # A count the flush would correct if it recounted (it is the history's once per member).
    Torrent.objects.filter(pk=torrent.pk).update(snatches=7)
    announce(client, MemberFactory(), torrent, left=10, peer=b"-TR4060-other")
    announce_runtime.flush_now()
    changed = Torrent.objects.get(pk=torrent.pk)
    assert (changed.leechers, changed.snatches) == (2, 7)  # counts changed, no snatch: kept
    clock.now += 1000
    announce(client, leecher, torrent, left=0, event="completed", peer=b"-TR4060-leech")
    announce_runtime.flush_now()
    torrent.refresh_from_db()
    assert (torrent.snatches, torrent.seeders, torrent.leechers) == (1, 2, 1)


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_counts_are_written_every_counts_seconds_and_snatches_every_flush(
    client, swarm, clock, monkeypatch, shared
):
    torrent, seeder, leecher = swarm
    if not shared:
        monkeypatch.setattr(
            announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url="", clock=clock)
        )
    with override_settings(PBTS_COUNTS_SECONDS=3600):
        announce(client, seeder, torrent, left=0)
        announce(client, leecher, torrent, left=10, peer=b"-TR4060-leech")
        announce_runtime.flush_now()  # the first flush writes counts
        torrent.refresh_from_db()
        assert (torrent.seeders, torrent.leechers, torrent.snatches) == (1, 1, 0)
        clock.now += 1000
        announce(client, leecher, torrent, left=0, event="completed", peer=b"-TR4060-leech")
        announce(client, MemberFactory(), torrent, left=10, peer=b"-TR4060-other")
        announce_runtime.flush_now()
        torrent.refresh_from_db()
        # Counts wait for their cadence; the snatch and the credit do not.
        assert (torrent.seeders, torrent.leechers, torrent.snatches) == (1, 1, 1)
        assert TorrentHistory.objects.filter(completed_at__isnull=False).count() == 1
        announce_runtime.runtime().counts_at -= 3600  # the cadence comes round
        announce_runtime.flush_now()
        torrent.refresh_from_db()
        assert (torrent.seeders, torrent.leechers, torrent.snatches) == (2, 1, 1)
