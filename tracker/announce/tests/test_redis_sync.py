"""Sharing peer stores through the real Redis: packing, replication, reaping, conflicts."""

import dataclasses
import random

import pytest
import redis
from django.conf import settings

from tracker.announce.records import (
    Announce,
    AnnounceRequest,
    Credit,
    Event,
    PeerState,
    TorrentStanding,
)
from tracker.announce.redis_stats import RedisStatsQueue
from tracker.announce.redis_sync import RedisPeerSync, pack_state, unpack_state
from tracker.announce.rules import Rules
from tracker.announce.store import MemoryPeerStore

RULES = Rules(min_interval=0, max_peers_per_member=10)


class Clock:
    now = 5_000_000.0

    def __call__(self):
        return self.now


def ann(member_id, peer, *, torrent=1, **request):
    """An authorized announce of ``member_id``'s peer ``peer`` on torrent ``torrent``."""
    fields = dict(
        info_hash=bytes(20),
        peer_id=peer.ljust(20, b"-"),
        port=6881,
        uploaded=0,
        downloaded=0,
        left=100,
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
    compact4 = bytes([127, 0, 0, member_id, 0x1A, 0xE1])
    standing = TorrentStanding(torrent, False, False)
    return Announce(AnnounceRequest(**fields), member_id, compact4, b"", standing)


@pytest.fixture
def nodes():
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"{settings.PBTS_REDIS_PREFIX}:synctest"
    clock = Clock()

    def node():
        store = MemoryPeerStore(clock=clock, rng=random.Random(1), journal=True)
        return RedisPeerSync(client, store, prefix=prefix, rules=RULES)

    yield node, clock, RedisStatsQueue(client, prefix=prefix)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def test_pack_state_round_trips_every_field():
    state = PeerState(
        7, b"p" * 20, b"\x7f\0\0\1\x1a\xe1", bytes(18), 2**40, 5, 0, Event.PAUSED, 1.5
    )
    assert unpack_state((7, b"p" * 20), pack_state(state)) == state
    assert pack_state(None) == b"" and unpack_state((1, b"x"), b"") is None


def test_a_new_process_loads_peers_and_follows_changes_and_removals(nodes):
    node, clock, _ = nodes
    a = node()
    a.store.announce(ann(1, b"a"), rules=RULES)
    a.store.announce(ann(2, b"b", left=0), rules=RULES)
    a.sync()
    b = node()
    assert b.load() == 2
    assert b.store.counts([1]) == {1: (1, 1)}
    clock.now += 10
    a.store.announce(ann(1, b"a", event="stopped"), rules=RULES)
    a.sync()
    assert b.sync().pulled == 1
    assert b.store.counts([1]) == {1: (1, 0)}


def test_reap_by_two_processes_removes_once_and_keeps_counts_right(nodes):
    node, clock, queue = nodes
    a, b = node(), node()
    a.store.announce(ann(1, b"a", torrent=3), rules=RULES)
    a.sync()
    b.sync()
    clock.now += 10_000
    assert a.store.reap(max_age=3600) == 1 and b.store.reap(max_age=3600) == 1
    a.sync()
    assert b.sync().conflicts == 1
    queue.claim()
    (batch_id,) = queue.pending()
    assert queue.read(batch_id).swarm_counts == {3: (0, 0)}


def test_a_reap_loses_to_a_fresher_announce_elsewhere(nodes):
    node, clock, _ = nodes
    a, b = node(), node()
    a.store.announce(ann(1, b"a", torrent=4), rules=RULES)
    a.sync()
    b.sync()
    clock.now += 10_000
    a.store.announce(ann(1, b"a", event="", uploaded=10, torrent=4), rules=RULES)  # fresh on a
    b.store.reap(max_age=3600)  # b still has the old state and reaps it
    a.sync()
    b.sync()
    assert b.store.counts([4]) == {4: (0, 1)}  # the fresher peer won and b follows it


def test_credits_are_claimed_once_into_a_batch(nodes):
    node, clock, queue = nodes
    a = node()
    a.store.announce(ann(9, b"s", left=0, torrent=5), rules=RULES)
    clock.now += 100
    a.store.announce(ann(9, b"s", left=0, uploaded=42, event="", torrent=5), rules=RULES)
    a.sync()
    batch_id = queue.claim()
    assert queue.claim() is None  # nothing new since
    batch = queue.read(batch_id)
    assert batch.credits == {(9, 5): Credit(42, 0, 100, False)}
    assert batch.swarm_counts == {5: (1, 0)}
    queue.done(batch_id)
    assert queue.pending() == []


def test_credits_beyond_double_precision_stay_exact_and_snatches_count(nodes):
    node, clock, queue = nodes
    a = node()
    fast = dataclasses.replace(RULES, max_credit_rate=2**60)  # no rate bound in the way
    a.store.announce(ann(3, b"x", left=10, torrent=6), rules=fast)
    clock.now += 10
    huge = 2**62 + 1  # not representable as a Lua number (double)
    a.store.announce(ann(3, b"x", left=0, uploaded=huge, event="completed", torrent=6), rules=fast)
    a.sync()
    batch = queue.read(queue.claim())
    assert batch.credits == {(3, 6): Credit(huge, 0, 0, True, leeching=True)}
    assert batch.swarm_counts == {6: (1, 0)}


def test_a_process_that_fell_behind_the_trimmed_log_reloads_every_peer(nodes):
    node, _clock, _ = nodes
    a, b = node(), node()
    b.load()
    a.store.announce(ann(1, b"a"), rules=RULES)
    a.sync()
    # Everything b has not read yet is trimmed away, as after LOG_SECONDS without pulling.
    a.client.xtrim(f"{a.prefix}:peerlog", minid="9999999999999-0", approximate=False)
    a.store.announce(ann(2, b"b"), rules=RULES)
    a.sync()
    assert b.pull() == 2  # a full reload, not the one entry left in the log
    assert b.store.counts([1]) == {1: (0, 2)}
