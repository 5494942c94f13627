"""The packed Swarm against a plain dictionary model: random puts, moves, removals and reaps,
small (searched) and large (indexed) swarms, IPv4, IPv6-only and dual-stack peers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tracker.announce.records import Event, PeerState, peer_key
from tracker.announce.swarm import INDEX_FROM, Swarm, _window


def _state(rng: random.Random, member_id: int, peer_id: bytes, at: float) -> PeerState:
    family = rng.choice(("v4", "v6", "both"))
    return PeerState(
        member_id=member_id,
        peer_id=peer_id,
        compact4=rng.randbytes(6) if family != "v6" else b"",
        compact6=rng.randbytes(18) if family != "v4" else b"",
        uploaded=rng.randrange(2**63),
        downloaded=rng.randrange(2**40),
        left=rng.choice((0, rng.randrange(1, 2**40))),
        event=rng.choice((Event.NONE, Event.STARTED, Event.COMPLETED, Event.PAUSED)),
        announced_at=at,
    )


def _check(swarm: Swarm, model: dict) -> None:
    assert len(swarm) == len(model)
    assert swarm.complete == sum(s.is_seeder for s in model.values())
    per_member = Counter(member_id for member_id, _ in model)
    for key, state in model.items():
        assert swarm.get(key) == state
        where, member_peers = swarm.find(peer_key(*key))
        assert where is not None and swarm.state_at(where) == state
        assert swarm.count_member(key[0]) == per_member[key[0]]
        assert member_peers in (-1, per_member[key[0]])  # -1: an indexed swarm, not counted
    assert swarm.find(peer_key(999, b"?" * 20)) == (None, -1 if swarm.index else 0)
    if swarm.index is not None:
        assert len(swarm.index) == len(model)
    for pool in (swarm.seeds, swarm.leeches):
        assert pool.no_addr == sum(not pool.has_addr(s) for s in range(pool.n))
        assert bytes(pool.members) == b"".join(pool.key(s)[:4] for s in range(pool.n))


@pytest.mark.parametrize("size", [20, INDEX_FROM * 3])
def test_packed_swarm_matches_a_dictionary_model(size):
    rng = random.Random(size)
    swarm, model = Swarm(), {}
    keys = [(rng.randrange(1, 50), rng.randbytes(20)) for _ in range(size)]
    for step in range(size * 8):
        key = rng.choice(keys)
        if rng.random() < 0.25:
            assert swarm.remove(key) == model.pop(key, None)
        else:
            state = _state(rng, *key, at=float(step))
            swarm.put(state)
            model[key] = state
        if step % 50 == 0:
            _check(swarm, model)
    cutoff = size * 4.0
    gone = swarm.reap(cutoff)
    assert sorted(g.announced_at for g in gone) == sorted(
        s.announced_at for s in model.values() if s.announced_at < cutoff
    )
    _check(swarm, {k: s for k, s in model.items() if s.announced_at >= cutoff})


def test_member_counts_and_presence_see_only_aligned_records():
    swarm = Swarm()
    # A peer_id that contains another member's id bytes must not count for that member.
    swarm.put(PeerState(1, (7).to_bytes(4, "big") * 5, b"\1" * 6, b"", 0, 0, 5, Event.NONE, 1.0))
    swarm.put(PeerState(7, b"x" * 20, b"\2" * 6, b"", 0, 0, 0, Event.NONE, 1.0))
    assert swarm.count_member(7) == 1 and swarm.count_member(1) == 1
    assert swarm.member_presence(7) == (True, False)
    assert swarm.member_presence(1) == (False, True)
    # Member ids 0x0100 and 0x0200 side by side hold 0x00000002 across their boundary.
    pair = Swarm()
    for member_id in (0x0100, 0x0200):
        peer_id = bytes([member_id >> 8]) * 20
        pair.put(PeerState(member_id, peer_id, b"\1" * 6, b"", 0, 0, 5, Event.NONE, 1.0))
    assert bytes(pair.leeches.members).find((0x02).to_bytes(4, "big")) == 3
    assert pair.count_member(0x02) == 0
    assert pair.member_presence(0x02) == (False, False)
    assert pair.count_member(0x0200) == 1


def test_selection_never_returns_the_peer_itself_and_skips_ipv6_only_peers():
    swarm = Swarm()
    for i in range(10):
        c4 = b"" if i % 3 == 0 else bytes([10, 0, 0, i, 0, 1])
        c6 = bytes(16) + bytes([0, i]) if i % 3 != 1 else b""
        swarm.put(PeerState(i + 1, bytes([i]) * 20, c4, c6, 0, 0, 10, Event.NONE, 1.0))
    me = swarm.locate(swarm.leeches.key(4))
    runs = swarm.select(me, seeder=False, count=50, rng=random.Random(1))
    peers4, peers6 = swarm.compact_peers(runs)
    fours = {peers4[i + 3] for i in range(0, len(peers4), 6)}
    sixes = {peers6[i + 17] for i in range(0, len(peers6), 18)}
    own = swarm.state_at(me)
    assert own.member_id - 1 not in fours | sixes
    assert fours == {i for i in range(10) if i % 3 != 0} - {own.member_id - 1}
    assert sixes == {i for i in range(10) if i % 3 != 1} - {own.member_id - 1}


def test_window_is_uniform_and_excludes_own_slot():
    rng = random.Random(3)
    seen: Counter[int] = Counter()
    for _ in range(4000):
        runs = _window(40, 10, 7, rng)
        slots = [s for lo, hi in runs for s in range(lo, hi)]
        assert len(slots) == len(set(slots)) == 10 and 7 not in slots
        seen.update(slots)
    assert 7 not in seen and len(seen) == 39
    assert max(seen.values()) < 1.25 * min(seen.values())


def test_locate_in_a_searched_swarm_skips_member_ids_across_slot_boundaries():
    # Member ids 0x0100 and 0x0200 side by side hold 0x00000002 across their boundary: a peer
    # of member 2 placed after them must still be found at its own slot, and a key whose
    # member id only appears across a boundary must not be found.
    swarm = Swarm()
    for member_id in (0x0100, 0x0200):
        peer_id = bytes([member_id >> 8]) * 20
        swarm.put(PeerState(member_id, peer_id, b"\1" * 6, b"", 0, 0, 5, Event.NONE, 1.0))
    assert swarm.locate(peer_key(0x02, b"\2" * 20)) is None
    swarm.put(PeerState(0x02, b"m" * 20, b"\1" * 6, b"", 0, 0, 5, Event.NONE, 2.0))
    swarm.put(PeerState(0x02, b"n" * 20, b"\1" * 6, b"", 0, 0, 0, Event.NONE, 3.0))
    assert swarm.index is None
    assert swarm.locate(peer_key(0x02, b"m" * 20)) == (False, 2)
    assert swarm.locate(peer_key(0x02, b"n" * 20)) == (True, 0)
    assert swarm.locate(peer_key(0x02, b"o" * 20)) is None
    assert swarm.locate(peer_key(0x0200, b"\2" * 20)) == (False, 1)
