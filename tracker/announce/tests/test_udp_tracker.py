"""The UDP tracker (BEP 15, passkeys in BEP 41 URL data): connection ids, the shared rules
over UDP, every bad input of the issue, and a bounded fuzz. No sockets here (see
``tracker/tests/test_trackerd.py`` for real ones)."""

from __future__ import annotations

import random
import struct

import pytest

from tracker.announce import udp_tracker, wire_udp
from tracker.announce.records import Credit
from tracker.announce.rules import Policy
from tracker.announce.store import MemoryPeerStore
from tracker.announce.tests.udp_helpers import (
    HASH,
    OTHER_HASH,
    PASSKEY,
    POLICY,
    POOR_PASSKEY,
    PROXY,
    SECOND_URL,
    V4,
    V4_OTHER,
    V6,
    V6_OTHER,
    Auth,
    Clock,
    announce_packet,
    announce_reply,
    connect,
    error_of,
)
from tracker.announce.wire_http import handle_announce


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock) -> MemoryPeerStore:
    return MemoryPeerStore(clock=clock, rng=random.Random(3))


@pytest.fixture
def tracker(store, clock) -> udp_tracker.UdpTracker:
    return udp_tracker.UdpTracker(
        auth=Auth(),
        store=store,
        policy=POLICY,
        snatches=lambda ids: {7: 4} if 7 in ids else {},
        ids=udp_tracker.ConnectionIds(udp_tracker.derive_secret("s1"), clock=clock),
        limiter=udp_tracker.ConnectLimiter(60, clock=clock),
        trusted=frozenset({PROXY[0]}),
    )


# --- connection ids ----------------------------------------------------------------------


def flip(connection_id: bytes, index: int) -> bytes:
    """``connection_id`` with the lowest bit of byte ``index`` flipped."""
    out = bytearray(connection_id)
    out[index] ^= 1
    return bytes(out)


def test_connection_id_is_valid_for_two_minutes_for_that_address(clock):
    ids = udp_tracker.ConnectionIds(udp_tracker.derive_secret("k"), clock=clock)
    cid = ids.issue("10.0.0.1")
    assert len(cid) == 8
    assert int.from_bytes(cid[:4], "big") == int(clock.now)  # timestamp in the first 4 bytes
    assert ids.check(cid, "10.0.0.1") == ids.VALID
    assert ids.check(cid, "10.0.0.2") == ids.INVALID  # another address
    assert ids.check(cid, "::ffff:10.0.0.1") == ids.INVALID  # another family's text
    assert ids.check(flip(cid, 7), "10.0.0.1") == ids.INVALID  # a flipped MAC bit
    assert ids.check(flip(cid, 3), "10.0.0.1") == ids.INVALID  # a forged timestamp
    assert ids.check(b"\0" * 8, "10.0.0.1") == ids.INVALID
    clock.now += udp_tracker.CONNECTION_ID_LIFETIME
    assert ids.check(cid, "10.0.0.1") == ids.VALID
    clock.now += 1
    assert ids.check(cid, "10.0.0.1") == ids.EXPIRED


def test_one_connection_id_serves_every_socket_of_a_client_and_no_other_address(tracker):
    """Issue 14: libtorrent 2.0.8 reuses one connection id per tracker across its sockets;
    bound to the port, the second torrent's announces got "Invalid connection ID" for a minute.
    BEP 15 binds an id to nothing more than the address."""
    cid = connect(tracker, ("10.0.0.1", 40001))
    reply = tracker.handle(announce_packet(cid, peer=b"-TR4060-a"), ("10.0.0.1", 40002))
    assert reply[:4] == b"\0\0\0\1"  # an announce reply, from another port of that address
    reply = tracker.handle(announce_packet(cid, peer=b"-TR4060-b"), ("10.0.0.2", 40001))
    assert error_of(reply) == "Invalid connection ID"  # the same port of another address
    reply = tracker.handle(announce_packet(cid, peer=b"-TR4060-c"), ("2001:db8::1", 40001, 0, 0))
    assert error_of(reply) == "Invalid connection ID"


def test_connection_id_from_the_future_is_invalid(clock):
    ids = udp_tracker.ConnectionIds(udp_tracker.derive_secret("k"), clock=clock)
    clock.now += 60
    cid = ids.issue("10.0.0.1")
    clock.now -= 60
    assert ids.check(cid, "10.0.0.1") == ids.INVALID


def test_rotated_secret_keeps_ids_of_the_previous_one_valid(clock):
    old = udp_tracker.ConnectionIds(udp_tracker.derive_secret("old"), clock=clock)
    cid = old.issue("2001:db8::1")
    rotated = udp_tracker.ConnectionIds(
        udp_tracker.derive_secret("new"), udp_tracker.derive_secret("old"), clock=clock
    )
    assert rotated.check(cid, "2001:db8::1") == rotated.VALID
    assert rotated.check(rotated.issue("2001:db8::1"), "2001:db8::1") == old.VALID
    stranger = udp_tracker.ConnectionIds(udp_tracker.derive_secret("new"), clock=clock)
    assert stranger.check(cid, "2001:db8::1") == stranger.INVALID


def test_default_secret_is_derived_not_the_site_key_itself():
    key = udp_tracker.derive_secret("django-secret-key")
    assert len(key) == 32 and b"django-secret-key" not in key
    assert (
        key == udp_tracker.derive_secret(b"django-secret-key") != udp_tracker.derive_secret("other")
    )


# --- connect, announce, scrape -----------------------------------------------------------


def test_seeder_and_leecher_meet_over_ipv4_with_6_byte_peers(tracker):
    seed_cid, leech_cid = connect(tracker, V4), connect(tracker, V4_OTHER)
    interval, leechers, seeders, peers = announce_reply(
        tracker.handle(announce_packet(seed_cid, peer=b"-TR4060-s", port=7001), V4), 6
    )
    assert (leechers, seeders, peers) == (0, 1, [])
    assert 1800 <= interval <= 1980  # interval + up to 10% jitter
    _, leechers, seeders, peers = announce_reply(
        tracker.handle(announce_packet(leech_cid, peer=b"-TR4060-l", left=100), V4_OTHER), 6
    )
    assert (leechers, seeders) == (1, 1)
    assert peers == [bytes([10, 0, 0, 1]) + (7001).to_bytes(2, "big")]
    assert tracker.counters.announces == 2 and tracker.counters.failures == 0


def test_ipv6_clients_get_18_byte_peers_and_ipv4_clients_do_not(tracker):
    tracker.handle(announce_packet(connect(tracker, V6), peer=b"-TR4060-6s", port=7006), V6)
    tracker.handle(announce_packet(connect(tracker, V4), peer=b"-TR4060-4s", port=7004), V4)
    _, _, seeders, peers = announce_reply(
        tracker.handle(
            announce_packet(connect(tracker, V6_OTHER), peer=b"-TR4060-6l", left=5, url=SECOND_URL),
            V6_OTHER,
        ),
        18,
    )
    assert seeders == 2
    assert peers == [bytes.fromhex("20010db8000000000000000000000001") + (7006).to_bytes(2, "big")]
    _, _, _, peers = announce_reply(
        tracker.handle(
            announce_packet(connect(tracker, V4_OTHER), peer=b"-TR4060-4l", left=5), V4_OTHER
        ),
        6,
    )
    assert peers == [bytes([10, 0, 0, 1]) + (7004).to_bytes(2, "big")]


def test_udp_announce_credits_exactly_as_http_does(tracker, store, clock):
    """The same announces over UDP and over HTTP give the same credit: one implementation."""
    http_store = MemoryPeerStore(clock=clock, rng=random.Random(3))
    steps = [(2, 1000, 0, 10), (0, 1500, 400, 20), (1, 0, 900, 30), (3, 0, 1000, 35)]
    names = {0: "", 1: "completed", 2: "started", 3: "stopped"}
    for event, left, downloaded, uploaded in steps:
        cid = connect(tracker, V4)  # ids last 2 minutes; these announces are 1,000 s apart
        reply = tracker.handle(
            announce_packet(cid, event=event, left=left, downloaded=downloaded, uploaded=uploaded),
            V4,
        )
        assert reply[:4] == b"\0\0\0\1", reply
        query = (
            f"info_hash={''.join(f'%{b:02X}' for b in HASH)}&peer_id=-TR4060-xxxxxxxxxxxx"
            f"&port=51413&uploaded={uploaded}&downloaded={downloaded}&left={left}"
            f"&event={names[event]}"
        ).encode()
        handle_announce(
            query, client_ip=V4[0], path_passkey=PASSKEY, auth=Auth(), store=http_store,
            policy=POLICY,
        )  # fmt: skip
        clock.now += 1000
    udp_batch, http_batch = store.take_batch(), http_store.take_batch()
    assert (
        udp_batch.credits
        == http_batch.credits
        == {(1, 7): Credit(25, 1000, 1000, True, leeching=True)}
    )
    assert udp_batch.swarm_counts == http_batch.swarm_counts == {7: (0, 0)}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": None}, "Missing passkey: use the announce URL with your passkey"),
        ({"url": b"/announce"}, "Missing passkey: use the announce URL with your passkey"),
        ({"url": b"/announce/" + b"c" * 32}, "Unknown passkey"),
        ({"url": b"/announce/x"}, "Unknown passkey"),
        ({"info_hash": OTHER_HASH}, "Unregistered torrent"),
        ({"peer": b"-XX0001-"}, "Client not allowed"),
        ({"port": 0}, "Invalid port: must be 1-65535"),
        ({"port": 6346}, "Port 6346 is blacklisted"),
        ({"event": 9}, "Invalid event"),
        ({"event": -1}, "Invalid event"),
        ({"left": -5}, "Invalid left: must be an integer from 0 to 9223372036854775807"),
        ({"options": b"\x02\x20/announce/"}, "Malformed request options (BEP 41)"),
    ],
)
def test_refused_announces_get_an_error_packet_with_the_reason(tracker, store, overrides, message):
    policy = Policy(rules=POLICY.rules, grace_bytes=0, blacklisted_ports=frozenset({6346}))
    tracker.policy = policy
    reply = tracker.handle(announce_packet(connect(tracker, V4), **overrides), V4)
    assert error_of(reply).startswith(message)
    assert not store.take_batch()


def test_ratio_refusal_reads_as_over_http(tracker, store):
    cid = connect(tracker, V4)
    reply = tracker.handle(
        announce_packet(cid, url=b"/announce/" + POOR_PASSKEY.encode(), left=10), V4
    )
    assert error_of(reply).startswith("Downloading disabled: ratio 0.00 is below 0.50")
    seed = tracker.handle(announce_packet(cid, url=b"/announce/" + POOR_PASSKEY.encode()), V4)
    assert announce_reply(seed, 6)[2] == 1  # seeding stays allowed


def test_announce_too_soon_is_refused_but_stopped_is_not(tracker, clock):
    cid = connect(tracker, V4)
    tracker.handle(announce_packet(cid, left=10), V4)
    clock.now += 10
    assert error_of(tracker.handle(announce_packet(cid, left=10, event=0), V4)) == (
        "Announce too soon"
    )
    reply = tracker.handle(announce_packet(cid, left=10, event=3), V4)
    assert announce_reply(reply, 6)[1:3] == (0, 0)


def test_ip_field_is_ignored_unless_the_source_is_trusted(tracker, store):
    spoofed = int.from_bytes(bytes([198, 51, 100, 7]), "big")
    tracker.handle(announce_packet(connect(tracker, V4), ip=spoofed, port=7001), V4)
    assert store.peer(7, (1, b"-TR4060-".ljust(20, b"x"))).compact4[:4] == bytes([10, 0, 0, 1])
    cid = connect(tracker, PROXY)
    tracker.handle(announce_packet(cid, peer=b"-TR4060-p", ip=spoofed, port=7002), PROXY)
    state = store.peer(7, (1, b"-TR4060-p".ljust(20, b"x")))
    assert state.compact4 == bytes([198, 51, 100, 7]) + (7002).to_bytes(2, "big")


def test_scrape_answers_registered_torrents_and_zeros_for_others_in_order(tracker):
    cid = connect(tracker, V4)
    tracker.handle(announce_packet(cid), V4)
    request = struct.pack(">QII", cid, 2, 77) + OTHER_HASH + HASH + OTHER_HASH
    reply = tracker.handle(request, V4)
    assert struct.unpack(">II", reply[:8]) == (2, 77)
    entries = list(struct.iter_unpack(">III", reply[8:]))
    assert entries == [(0, 0, 0), (1, 4, 0), (0, 0, 0)]  # seeders, completed, leechers


@pytest.mark.parametrize(
    ("hashes", "message"),
    [
        (75, "Too many info_hash values (at most 74)"),
        (0, "Full scrape is not allowed: give info_hash"),
    ],
)
def test_scrape_of_too_many_or_no_hashes_is_an_error(tracker, hashes, message):
    request = struct.pack(">QII", connect(tracker, V4), 2, 5) + HASH * hashes
    assert error_of(tracker.handle(request, V4)) == message


def test_scrape_of_74_hashes_is_answered(tracker):
    request = struct.pack(">QII", connect(tracker, V4), 2, 5) + HASH * 74
    reply = tracker.handle(request, V4)
    assert len(reply) == 8 + 12 * 74


def test_scrape_with_a_partial_hash_is_an_error(tracker):
    request = struct.pack(">QII", connect(tracker, V4), 2, 5) + HASH + b"abc"
    assert error_of(tracker.handle(request, V4)).startswith("Malformed scrape")


# --- bad input: each case of the issue ---------------------------------------------------


def test_wrong_connection_id_gets_an_error_on_announce_and_scrape(tracker, store):
    forged = connect(tracker, V4) ^ 0xFF  # the last MAC byte
    assert error_of(tracker.handle(announce_packet(forged), V4)) == "Invalid connection ID"
    scrape = struct.pack(">QII", forged, 2, 5) + HASH
    assert error_of(tracker.handle(scrape, V4)) == "Invalid connection ID"
    other_address = connect(tracker, V4_OTHER)
    assert error_of(tracker.handle(announce_packet(other_address), V4)) == "Invalid connection ID"
    assert not store.take_batch()


def test_expired_connection_id_gets_an_error(tracker, store, clock):
    cid = connect(tracker, V4)
    clock.now += udp_tracker.CONNECTION_ID_LIFETIME + 1
    assert error_of(tracker.handle(announce_packet(cid), V4)) == "Connection ID expired"
    assert not store.take_batch()


def test_errors_to_unproven_addresses_are_never_larger_than_the_request(tracker):
    # A 16-byte "announce" with a bad id: an error (29 bytes) would amplify, so silence.
    assert tracker.handle(struct.pack(">QII", 1234, 1, 5), V4) is None
    # A 20-byte scrape-like packet: the same.
    assert tracker.handle(struct.pack(">QII", 1234, 2, 5) + b"abcd", V4) is None


def test_wrong_action_is_an_error_with_a_valid_id_and_silent_without(tracker):
    cid = connect(tracker, V4)
    assert error_of(tracker.handle(struct.pack(">QII", cid, 3, 5), V4)) == "Unknown action"
    assert error_of(tracker.handle(struct.pack(">QII", cid, 99, 5) + b"x" * 90, V4)) == (
        "Unknown action"
    )
    assert tracker.handle(struct.pack(">QII", 42, 7, 5) + b"x" * 90, V4) is None
    # A connect request sent as an announce: the magic is not a connection id.
    assert tracker.handle(struct.pack(">QII", wire_udp.PROTOCOL_ID, 1, 5), V4) is None


def test_connect_without_the_protocol_id_is_silent(tracker):
    assert tracker.handle(struct.pack(">QII", 0, 0, 5), V4) is None
    assert tracker.counters.connects == 0


def test_connects_are_rate_limited_per_address(tracker, clock):
    packet = struct.pack(">QII", wire_udp.PROTOCOL_ID, 0, 1)
    answered = [tracker.handle(packet, V4) is not None for _ in range(30)]
    assert answered == [True] * 15 + [False] * 15  # 60 a minute: a burst of 15
    assert tracker.handle(packet, V4_OTHER) is not None  # per address
    clock.now += 1.0
    assert tracker.handle(packet, V4) is not None  # one more token a second


def test_connect_limiter_forgets_refilled_buckets_and_stays_bounded(clock):
    limiter = udp_tracker.ConnectLimiter(60, clock=clock, prune_seconds=10, max_entries=100)
    for i in range(100):
        assert limiter.allow(f"10.0.{i // 256}.{i % 256}")
    clock.now += 20  # every bucket has refilled
    assert limiter.allow("10.9.9.9")
    assert len(limiter) == 1
    for i in range(300):  # more addresses than max_entries: the table is reset, not grown
        limiter.allow(f"10.1.{i // 256}.{i % 256}")
    assert len(limiter) <= 101


def test_zero_connects_per_minute_disables_the_limit(clock):
    limiter = udp_tracker.ConnectLimiter(0, clock=clock)
    assert all(limiter.allow("10.0.0.1") for _ in range(1000))


def test_truncated_announce_with_a_valid_id_is_an_error(tracker, store):
    packet = announce_packet(connect(tracker, V4))
    for size in (16, 50, 97):
        assert error_of(tracker.handle(packet[:size], V4)).startswith("Malformed announce")
    assert error_of(tracker.handle(packet[:98], V4)).startswith("Missing passkey")
    assert not store.take_batch()


def test_oversize_datagram_is_an_error_with_a_valid_id_and_silent_without(tracker, store):
    cid = connect(tracker, V4)
    big = announce_packet(cid, options=wire_udp.encode_options(b"/announce/" + PASSKEY.encode()))
    big += b"\x01" * (wire_udp.MAX_DATAGRAM + 10)
    assert error_of(tracker.handle(big, V4)) == "Request too long"
    assert tracker.handle(b"\xff" * 65_507, V4) is None
    assert not store.take_batch()


@pytest.mark.parametrize("size", [0, 1, 8, 15])
def test_datagrams_shorter_than_a_header_are_dropped(tracker, size):
    assert tracker.handle(b"\0" * size, V4) is None


# --- fuzz ----------------------------------------------------------------------------------


def test_fuzzed_datagrams_never_raise_and_never_change_a_statistic(tracker, store, clock):
    """Random, truncated, oversize and mutated datagrams (a bounded, seeded loop): every one
    is answered with an error or dropped; no exception escapes, none is caught internally,
    and the credits, swarm counts and the one real peer are exactly as before."""
    rng = random.Random(20261122)
    addresses = (V4, V6, V4_OTHER)
    ids = {addr: connect(tracker, addr) for addr in addresses}
    cid = ids[V4]
    assert tracker.handle(announce_packet(cid, left=500, downloaded=10, uploaded=20), V4)
    store.take_batch()
    peer_key = (1, b"-TR4060-".ljust(20, b"x"))
    before = store.peer(7, peer_key)
    bad_url = b"/announce/" + b"f" * 32  # not a member's passkey
    kinds = {"random": 0, "truncated": 0, "oversize": 0, "mutated": 0, "options": 0}
    for i in range(4000):
        addr = addresses[i % 3]
        cid = ids[addr]
        valid = announce_packet(cid, url=bad_url, left=5)
        choice = (i // 3) % 5
        if choice == 0:
            kinds["random"] += 1
            data = rng.randbytes(rng.randrange(0, 1600))
        elif choice == 1:
            kinds["truncated"] += 1
            real = announce_packet(cid, left=1, uploaded=10**9)
            data = real[: rng.randrange(0, 98)]
        elif choice == 2:
            kinds["oversize"] += 1
            head = struct.pack(">QII", cid, rng.choice((1, 2, 3)), i)
            data = head + rng.randbytes(rng.randrange(wire_udp.MAX_DATAGRAM, 9000))
        elif choice == 3:
            kinds["mutated"] += 1
            data = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                pos = rng.randrange(8, len(data))  # keep the connection id: go deep
                data[pos] = rng.randrange(256)
            data = bytes(data)
        else:
            kinds["options"] += 1
            data = valid[:98] + rng.randbytes(rng.randrange(0, 400))
        reply = tracker.handle(data, addr)
        if reply is not None:
            assert len(reply) >= 8
            action = struct.unpack_from(">I", reply)[0]
            if action == 1:  # a mutation that kept a valid announce of a stranger's passkey?
                pytest.fail(f"fuzzed datagram accepted: {data!r}")
            assert action in (2, 3)
    assert tracker.counters.failures == 0
    assert not store.take_batch()
    assert store.peer(7, peer_key) == before
    assert store.counts([7]) == {7: (0, 1)}
    assert all(kinds.values())
