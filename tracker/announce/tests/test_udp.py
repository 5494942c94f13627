"""UDP tracker (BEP 15, passkeys in BEP 41 URL data): packets, connection ids, options, the
shared rules over UDP, every bad input of the issue, and a bounded fuzz. No sockets here (see
``tracker/tests/test_trackerd.py`` for real ones)."""

from __future__ import annotations

import random
import struct

import pytest

from tracker.announce import udp
from tracker.announce.handler import MemberStanding, Policy, TorrentStanding, handle_announce
from tracker.announce.protocol import Refusal
from tracker.announce.store import MemoryPeerStore
from tracker.announce.swarm import Rules

PASSKEY = "a" * 32
POOR_PASSKEY = "b" * 32
SECOND_PASSKEY = "d" * 32
SECOND_URL = b"/announce/" + SECOND_PASSKEY.encode()
HASH = bytes(range(20))
OTHER_HASH = bytes(range(1, 21))
V4 = ("10.0.0.1", 6881)
V4_OTHER = ("10.0.0.2", 6882)
V6 = ("2001:db8::1", 6881, 0, 0)
V6_OTHER = ("2001:db8::2", 6882, 0, 0)
PROXY = ("192.0.2.10", 4000)
ANNOUNCE = struct.Struct(">QII20s20sqqqiIIiH")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Auth:
    """Two members (one below the ratio), one registered torrent, ``-TR`` clients only."""

    def member(self, passkey: str) -> MemberStanding | None:
        return {
            PASSKEY: MemberStanding(1, False, True, False),
            POOR_PASSKEY: MemberStanding(2, False, True, False, 1, 10 * 1024**3),
            SECOND_PASSKEY: MemberStanding(3, False, True, False),
        }.get(passkey)

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        return TorrentStanding(7, False, False) if info_hash_hex == HASH.hex() else None

    def client_allowed(self, peer_id: bytes) -> bool:
        return peer_id.startswith(b"-TR")


POLICY = Policy(rules=Rules(interval=1800, min_interval=900), grace_bytes=0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock) -> MemoryPeerStore:
    return MemoryPeerStore(clock=clock, rng=random.Random(3))


@pytest.fixture
def tracker(store, clock) -> udp.UdpTracker:
    return udp.UdpTracker(
        auth=Auth(),
        store=store,
        policy=POLICY,
        snatches=lambda ids: {7: 4} if 7 in ids else {},
        ids=udp.ConnectionIds(udp.derive_secret("s1"), clock=clock),
        limiter=udp.ConnectLimiter(60, clock=clock),
        trusted=frozenset({PROXY[0]}),
    )


def connect(tracker: udp.UdpTracker, addr: tuple, tid: int = 9) -> int:
    reply = tracker.handle(struct.pack(">QII", udp.PROTOCOL_ID, 0, tid), addr)
    action, got_tid, connection_id = struct.unpack(">IIQ", reply)
    assert (action, got_tid) == (0, tid)
    return connection_id


def announce_packet(
    connection_id: int,
    *,
    tid: int = 5,
    info_hash: bytes = HASH,
    peer: bytes = b"-TR4060-",
    downloaded: int = 0,
    left: int = 0,
    uploaded: int = 0,
    event: int = 2,
    ip: int = 0,
    key: int = 0xABCD,
    numwant: int = -1,
    port: int = 51413,
    url: bytes | None = b"/announce/" + PASSKEY.encode(),
    options: bytes | None = None,
) -> bytes:
    head = ANNOUNCE.pack(
        connection_id, 1, tid, info_hash, peer.ljust(20, b"x"), downloaded, left, uploaded,
        event, ip, key, numwant, port,
    )  # fmt: skip
    if options is None:
        options = udp.encode_options(url) if url is not None else b""
    return head + options


def error_of(reply: bytes | None, tid: int = 5) -> str:
    assert reply is not None, "expected an error packet, got silence"
    action, got_tid = struct.unpack_from(">II", reply)
    assert (action, got_tid) == (3, tid), reply
    return reply[8:].decode()


def announce_reply(reply: bytes | None, stride: int) -> tuple[int, int, int, list[bytes]]:
    assert reply is not None
    action, _, interval, leechers, seeders = struct.unpack_from(">IIIII", reply)
    assert action == 1, reply[8:]
    body = reply[20:]
    assert len(body) % stride == 0
    return interval, leechers, seeders, [body[i : i + stride] for i in range(0, len(body), stride)]


# --- connection ids ----------------------------------------------------------------------


def flip(connection_id: bytes, index: int) -> bytes:
    """``connection_id`` with the lowest bit of byte ``index`` flipped."""
    out = bytearray(connection_id)
    out[index] ^= 1
    return bytes(out)


def test_connection_id_is_valid_for_two_minutes_for_that_address_and_port(clock):
    ids = udp.ConnectionIds(udp.derive_secret("k"), clock=clock)
    cid = ids.issue("10.0.0.1", 6881)
    assert len(cid) == 8
    assert int.from_bytes(cid[:4], "big") == int(clock.now)  # timestamp in the first 4 bytes
    assert ids.check(cid, "10.0.0.1", 6881) == ids.VALID
    assert ids.check(cid, "10.0.0.2", 6881) == ids.INVALID  # another address
    assert ids.check(cid, "10.0.0.1", 6882) == ids.INVALID  # another port
    assert ids.check(flip(cid, 7), "10.0.0.1", 6881) == ids.INVALID  # a flipped MAC bit
    assert ids.check(flip(cid, 3), "10.0.0.1", 6881) == ids.INVALID  # a forged timestamp
    assert ids.check(b"\0" * 8, "10.0.0.1", 6881) == ids.INVALID
    clock.now += udp.CONNECTION_ID_LIFETIME
    assert ids.check(cid, "10.0.0.1", 6881) == ids.VALID
    clock.now += 1
    assert ids.check(cid, "10.0.0.1", 6881) == ids.EXPIRED


def test_connection_id_from_the_future_is_invalid(clock):
    ids = udp.ConnectionIds(udp.derive_secret("k"), clock=clock)
    clock.now += 60
    cid = ids.issue("10.0.0.1", 6881)
    clock.now -= 60
    assert ids.check(cid, "10.0.0.1", 6881) == ids.INVALID


def test_rotated_secret_keeps_ids_of_the_previous_one_valid(clock):
    old = udp.ConnectionIds(udp.derive_secret("old"), clock=clock)
    cid = old.issue("2001:db8::1", 6881)
    rotated = udp.ConnectionIds(udp.derive_secret("new"), udp.derive_secret("old"), clock=clock)
    assert rotated.check(cid, "2001:db8::1", 6881) == rotated.VALID
    assert rotated.check(rotated.issue("2001:db8::1", 6881), "2001:db8::1", 6881) == old.VALID
    stranger = udp.ConnectionIds(udp.derive_secret("new"), clock=clock)
    assert stranger.check(cid, "2001:db8::1", 6881) == stranger.INVALID


def test_default_secret_is_derived_not_the_site_key_itself():
    key = udp.derive_secret("django-secret-key")
    assert len(key) == 32 and b"django-secret-key" not in key
    assert key == udp.derive_secret(b"django-secret-key") != udp.derive_secret("other")


# --- BEP 41 options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "url"),
    [
        (b"", b""),
        (b"\x02\x05/anno", b"/anno"),  # one URLData option, as libtorrent sends it
        (b"\x02\x05/anno\x02\x04unce\x00", b"/announce"),  # split URL data, concatenated
        (b"\x01\x01\x02\x03/an\x01\x02\x02no", b"/anno"),  # NOPs anywhere
        (b"\x07\x03xyz\x02\x02/a\xff\x00\x02\x01b", b"/ab"),  # unknown types skipped by length
        (b"\x02\x02/a\x00\x02\x02/b", b"/a"),  # EndOfOptions: the rest is ignored
        (b"\x00garbage", b""),
    ],
)
def test_url_data_is_gathered_across_options(options, url):
    assert udp.url_data(options) == url


@pytest.mark.parametrize("options", [b"\x02", b"\x02\x05/an", b"\x01\x09\x10abc", b"\x02\x01"])
def test_truncated_options_are_refused(options):
    with pytest.raises(Refusal, match="BEP 41"):
        udp.url_data(options)


def test_url_data_over_the_limit_is_refused():
    with pytest.raises(Refusal, match="too long"):
        udp.url_data(udp.encode_options(b"/" * (udp.MAX_URL_DATA + 1)))


def test_encode_options_splits_long_urls_into_255_byte_options():
    url = b"/announce/" + b"x" * 600
    options = udp.encode_options(url)
    assert options[0] == 2 and options[1] == 255 and options[-1] == 0
    assert udp.url_data(options) == url


@pytest.mark.parametrize(
    ("url", "passkey"),
    [
        (b"/announce/" + PASSKEY.encode(), PASSKEY),
        (b"/announce/" + PASSKEY.encode() + b"?info=1&x", PASSKEY),  # query ignored
        (b"/announce/" + PASSKEY.encode() + b"/", PASSKEY),
        (b"/announce/not-hex", "not-hex"),  # refused later as an unknown passkey
    ],
)
def test_passkey_comes_from_the_announce_path(url, passkey):
    assert udp.passkey_from_url(url) == passkey


@pytest.mark.parametrize("url", [b"", b"/announce", b"/announce/", b"/scrape/abc", b"?passkey=a"])
def test_url_without_a_passkey_path_is_missing_passkey(url):
    with pytest.raises(Refusal, match="Missing passkey: use the announce URL with your passkey"):
        udp.passkey_from_url(url)


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
    assert udp_batch.credits == http_batch.credits == {(1, 7): [25, 1000, 1000, 1]}
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


@pytest.mark.parametrize(
    ("numwant", "v6", "expected"),
    [(-1, False, None), (-7, True, None), (0, False, 0), (10, False, 10), (500, False, 200),
     (500, True, 66)],
)  # fmt: skip
def test_numwant_minus_one_is_the_default_and_large_values_fit_one_datagram(numwant, v6, expected):
    req, _ = udp.parse_announce_packet(announce_packet(1, numwant=numwant), v6=v6)
    assert req.numwant == expected


def test_announce_packet_becomes_the_shared_request():
    req, ip = udp.parse_announce_packet(
        announce_packet(1, downloaded=3, left=4, uploaded=5, event=1, ip=7, key=0xBEEF, port=9)
    )
    assert (req.info_hash, req.peer_id) == (HASH, b"-TR4060-".ljust(20, b"x"))
    assert (req.downloaded, req.left, req.uploaded, req.port) == (3, 4, 5, 9)
    assert (req.event, req.key, req.passkey, ip) == ("completed", b"0000BEEF", PASSKEY, 7)
    assert req.compact and (req.ipv4, req.ipv6) == ("", "")
    events = [udp.parse_announce_packet(announce_packet(1, event=e))[0].event for e in range(5)]
    assert events == ["", "completed", "started", "stopped", "paused"]


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
    clock.now += udp.CONNECTION_ID_LIFETIME + 1
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
    assert tracker.handle(struct.pack(">QII", udp.PROTOCOL_ID, 1, 5), V4) is None


def test_connect_without_the_protocol_id_is_silent(tracker):
    assert tracker.handle(struct.pack(">QII", 0, 0, 5), V4) is None
    assert tracker.counters.connects == 0


def test_connects_are_rate_limited_per_address(tracker, clock):
    packet = struct.pack(">QII", udp.PROTOCOL_ID, 0, 1)
    answered = [tracker.handle(packet, V4) is not None for _ in range(30)]
    assert answered == [True] * 15 + [False] * 15  # 60 a minute: a burst of 15
    assert tracker.handle(packet, V4_OTHER) is not None  # per address
    clock.now += 1.0
    assert tracker.handle(packet, V4) is not None  # one more token a second


def test_connect_limiter_forgets_refilled_buckets_and_stays_bounded(clock):
    limiter = udp.ConnectLimiter(60, clock=clock, prune_seconds=10, max_entries=100)
    for i in range(100):
        assert limiter.allow(f"10.0.{i // 256}.{i % 256}")
    clock.now += 20  # every bucket has refilled
    assert limiter.allow("10.9.9.9")
    assert len(limiter) == 1
    for i in range(300):  # more addresses than max_entries: the table is reset, not grown
        limiter.allow(f"10.1.{i // 256}.{i % 256}")
    assert len(limiter) <= 101


def test_zero_connects_per_minute_disables_the_limit(clock):
    limiter = udp.ConnectLimiter(0, clock=clock)
    assert all(limiter.allow("10.0.0.1") for _ in range(1000))


def test_truncated_announce_with_a_valid_id_is_an_error(tracker, store):
    packet = announce_packet(connect(tracker, V4))
    for size in (16, 50, 97):
        assert error_of(tracker.handle(packet[:size], V4)).startswith("Malformed announce")
    assert error_of(tracker.handle(packet[:98], V4)).startswith("Missing passkey")
    assert not store.take_batch()


def test_oversize_datagram_is_an_error_with_a_valid_id_and_silent_without(tracker, store):
    cid = connect(tracker, V4)
    big = announce_packet(cid, options=udp.encode_options(b"/announce/" + PASSKEY.encode()))
    big += b"\x01" * (udp.MAX_DATAGRAM + 10)
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
            data = head + rng.randbytes(rng.randrange(udp.MAX_DATAGRAM, 9000))
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


def test_packet_code_imports_no_django():
    """The UDP protocol module is pure (style: BEP 15 packets are plain functions)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, tracker.announce.udp\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    root = Path(__file__).resolve().parents[3]  # not udp.__file__: build/speedups/ when compiled
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)
