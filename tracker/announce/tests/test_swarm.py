"""Swarm rules: deltas, duplicates, min interval, per-member limit, selection, reaping."""

import dataclasses
import random

import pytest

from tracker.announce.records import (
    Announce,
    AnnounceRequest,
    Credit,
    Event,
    Refusal,
    TorrentStanding,
)
from tracker.announce.rules import Rules, reply_interval
from tracker.announce.store import MemoryPeerStore

RULES = Rules(interval=1800, min_interval=900, max_peers=50, max_peers_per_member=3)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def ann(
    member_id=1,
    peer=b"a",
    port=6881,
    *,
    torrent=1,
    compact4=None,
    compact6=b"",
    is_freeleech=False,
    is_double_upload=False,
    leech_refusal="",
    **request,
) -> Announce:
    """An authorized announce of peer ``peer`` of ``member_id`` on torrent ``torrent``;
    ``request`` overrides the request's fields (``event`` may be given as text)."""
    fields = dict(
        info_hash=bytes(20),
        peer_id=peer.ljust(20, b"-"),
        port=port,
        uploaded=0,
        downloaded=0,
        left=1000,
        event="started",
        numwant=None,
        compact=True,
        no_peer_id=False,
        key=b"",
        passkey="",
        ipv4="",
        ipv6="",
    )
    fields.update(request)
    fields["event"] = Event(fields["event"])
    if compact4 is None:
        compact4 = bytes([127, 0, 0, member_id]) + port.to_bytes(2, "big")
    standing = TorrentStanding(torrent, is_freeleech, is_double_upload)
    return Announce(
        AnnounceRequest(**fields), member_id, compact4, compact6, standing, leech_refusal
    )


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(clock):
    return MemoryPeerStore(clock=clock, rng=random.Random(7))


def test_first_announce_sets_baseline_and_later_ones_credit_deltas(store, clock):
    store.announce(ann(uploaded=500, downloaded=700), rules=RULES)
    clock.now += 1000
    out = store.announce(ann(uploaded=800, downloaded=1000, event=""), rules=RULES)
    assert (out.credit.uploaded, out.credit.downloaded) == (300, 300)
    # Both announces leeched (left > 0): the batch carries that mark for the receipts check.
    assert store.take_batch().credits == {(1, 1): Credit(300, 300, 0, False, leeching=True)}


def test_counter_reset_credits_the_new_value_never_a_negative(store, clock):
    store.announce(ann(uploaded=5000), rules=RULES)
    clock.now += 1000
    out = store.announce(ann(uploaded=200, event=""), rules=RULES)
    assert out.credit.uploaded == 200


def test_freeleech_and_double_upload_apply(store, clock):
    store.announce(ann(), rules=RULES)
    clock.now += 1000
    out = store.announce(
        ann(uploaded=100, downloaded=400, event="", is_freeleech=True, is_double_upload=True),
        rules=RULES,
    )
    assert (out.credit.uploaded, out.credit.downloaded) == (200, 0)


def test_duplicate_within_seconds_is_answered_but_not_counted_twice(store, clock):
    store.announce(ann(), rules=RULES)
    clock.now += 1000
    first = store.announce(ann(uploaded=100, event="completed", left=0), rules=RULES)
    clock.now += 1
    v6 = bytes(15) + b"\x01" + (6881).to_bytes(2, "big")
    second = store.announce(
        ann(uploaded=100, event="completed", left=0, compact4=b"", compact6=v6), rules=RULES
    )
    assert first.credit.uploaded == 100 and first.credit.snatched
    assert (second.credit.uploaded, second.credit.snatched) == (0, False)
    assert second.state.compact4 and second.state.compact6  # both addresses kept
    # 1 s of seeding; the first announce leeched.
    assert store.take_batch().credits[(1, 1)] == Credit(100, 0, 1, True, leeching=True)


def test_inside_min_interval_only_stopped_and_the_finishing_completed_pass(store, clock):
    store.announce(ann(), rules=RULES)
    clock.now += 60
    with pytest.raises(Refusal, match="Announce too soon"):
        store.announce(ann(event=""), rules=RULES)
    # The completed that finishes the download (left > 0 -> 0) passes, as clients send it at
    # once (BEP 3); a completed that finishes nothing does not: it let a client announce, and
    # be credited, at will (issue 13).
    store.announce(ann(event="completed", left=0), rules=RULES)
    clock.now += 60
    with pytest.raises(Refusal, match="Announce too soon"):
        store.announce(ann(event="completed", left=0, uploaded=10**9), rules=RULES)
    clock.now += 60
    out = store.announce(ann(event="stopped", left=0), rules=RULES)
    assert out.complete == 0 and out.incomplete == 0


def test_a_delta_beyond_the_rate_bound_is_cut_and_marked(store, clock):
    rules = dataclasses.replace(RULES, max_credit_rate=1000)  # bytes per second
    store.announce(ann(), rules=rules)
    clock.now += 1000
    out = store.announce(ann(uploaded=2**63 - 1, downloaded=5, event=""), rules=rules)
    assert (out.credit.uploaded, out.credit.downloaded) == (1000 * 1000, 5)
    assert out.credit.clamped
    clock.now += 1000
    fair = store.announce(ann(uploaded=2**63 - 1, downloaded=6, event=""), rules=rules)
    assert (fair.credit.uploaded, fair.credit.clamped) == (0, False)
    assert store.take_batch().credits[(1, 1)].clamped


def test_at_most_three_peers_per_member_per_torrent(store):
    for peer in (b"a", b"b", b"c"):
        store.announce(ann(peer=peer), rules=RULES)
    with pytest.raises(Refusal, match="at most 3"):
        store.announce(ann(peer=b"d"), rules=RULES)
    store.announce(ann(peer=b"d", torrent=2), rules=RULES)  # another torrent is fine


def test_seeders_get_leechers_only_and_never_themselves(store):
    store.announce(ann(member_id=1, peer=b"s1", left=0), rules=RULES)
    store.announce(ann(member_id=2, peer=b"s2", left=0), rules=RULES)
    store.announce(ann(member_id=3, peer=b"l1"), rules=RULES)
    out = store.announce(ann(member_id=4, peer=b"s3", left=0, compact=False), rules=RULES)
    assert [peer_id[:2] for peer_id, _ in out.peers] == [b"l1"]
    leecher = store.announce(ann(member_id=5, peer=b"l2", compact=False), rules=RULES)
    got = sorted(peer_id.rstrip(b"-") for peer_id, _ in leecher.peers)
    assert got == [b"l1", b"s1", b"s2", b"s3"]


def test_numwant_is_capped_by_max_peers(store):
    rules = Rules(max_peers=5, max_peers_per_member=100)
    for i in range(20):
        store.announce(ann(member_id=i + 10, peer=b"p%d" % i), rules=rules)
    out = store.announce(ann(member_id=99, numwant=1000), rules=rules)
    assert len(out.peers4) == 5 * 6


def test_refused_leecher_is_credited_then_dropped(store, clock):
    store.announce(ann(), rules=RULES)
    clock.now += 1000
    out = store.announce(ann(uploaded=50, event="", leech_refusal="ratio"), rules=RULES)
    assert out.refusal == "ratio" and out.credit.uploaded == 50
    assert store.counts([1]) == {1: (0, 0)}


def test_seeding_time_accumulates_between_announces(store, clock):
    store.announce(ann(left=0), rules=RULES)
    clock.now += 1800
    out = store.announce(ann(left=0, event=""), rules=RULES)
    assert out.credit.seed_seconds == 1800


def test_reaper_removes_silent_peers_and_marks_counts_dirty(store, clock):
    store.announce(ann(torrent=7), rules=RULES)
    store.take_batch()
    clock.now += 5000
    assert store.reap(max_age=3600) == 1
    assert store.take_batch().swarm_counts == {7: (0, 0)}


def test_failed_flush_batch_can_be_returned_without_loss(store, clock):
    store.announce(ann(), rules=RULES)
    clock.now += 1000
    store.announce(ann(uploaded=10, event=""), rules=RULES)
    batch = store.take_batch()
    clock.now += 1000
    store.announce(ann(uploaded=15, event=""), rules=RULES)
    store.return_batch(batch)
    assert store.take_batch().credits[(1, 1)].uploaded == 15


@pytest.mark.parametrize(
    ("event", "left", "snatched"),
    [("completed", 0, True), ("stopped", 0, True), ("", 0, True), ("stopped", 5, False)],
)
def test_a_snatch_is_a_finished_download_whatever_the_event(store, clock, event, left, snatched):
    store.announce(ann(left=1000), rules=RULES)
    clock.now += 1000
    out = store.announce(ann(left=left, event=event), rules=RULES)
    assert out.credit.snatched is snatched
    clock.now += 1000
    again = store.announce(ann(left=0, event="completed"), rules=RULES)
    assert again.credit.snatched is (not snatched and event != "stopped")


def test_a_first_announce_that_leaves_no_peer_leaves_no_empty_swarm(store):
    store.announce(ann(event="stopped"), rules=RULES)
    store.announce(ann(leech_refusal="Downloading disabled", torrent=2), rules=RULES)
    assert store._swarms == {}


@pytest.mark.parametrize("interval", [10, 1800])
def test_reply_interval_jitters_over_the_whole_tenth_and_no_further(interval):
    rules = dataclasses.replace(RULES, interval=interval)
    seen = {reply_interval(rules) for _ in range(20_000)}
    jitter = interval // 10
    assert min(seen) == interval and max(seen) == interval + jitter
    assert len(seen) == jitter + 1  # every whole second of the tenth is drawn
