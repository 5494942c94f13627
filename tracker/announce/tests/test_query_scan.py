"""The one-pass announce scanner (``query_scan.scan_announce``) against the generic parser
(``wire_http.parse_announce_generic``): whatever the scanner accepts, the generic parser accepts
with the same request; the scanner accepts what real clients send. Runs from the sources
(``make test``) and compiled (``make test-compiled``), where ``parse_announce`` uses it."""

import random
from urllib.parse import quote_from_bytes

import pytest

from tracker.announce import query_scan
from tracker.announce.records import Refusal
from tracker.announce.tests.test_wire_http import INFO_HASH, PEER_ID, query
from tracker.announce.wire_http import parse_announce, parse_announce_generic

PASSKEY = "0123456789abcdef0123456789abcdef"
# What clients send (BEP 3 parameters; names and order as they put them).
CLIENT_QUERIES = [
    query(),  # Transmission-like: event=started
    query(event=None, key=b"96EC08C3", numwant=b"200", compact=b"1", no_peer_id=b"1")
    + b"&corrupt=0&supportcrypto=1&redundant=0",  # libtorrent (qBittorrent, Deluge)
    query(event=b"completed", left=b"0", numwant=b"0", key=b"abc"),
    query(event=b"stopped", uploaded=b"123456789012345678"),
    query(event=b"paused"),  # BEP 21
    query(event=b""),
    query(compact=b"0", no_peer_id=b"0"),
    query(ipv6=b"2a00:1450::1", ipv4=b"10.0.0.5"),  # BEP 7
    query(passkey=PASSKEY.encode()),  # the original PBTS form
    query() + b"&trackerid=42&azudp=6881",
    query(info_hash=b"A" * 20, peer_id=b"-qB4620-" + b"+" * 12),  # nothing to unescape; '+'
]


def _same(q: bytes, passkey: str) -> bool:
    """Check ``q`` both ways; True when the scanner took it."""
    scanned = query_scan.scan_announce(q, passkey)
    try:
        generic = parse_announce_generic(q, passkey=passkey)
    except Refusal as refusal:
        assert scanned is None, (q, refusal.reason)
        return False
    if scanned is None:
        return False
    assert scanned == generic, q
    return True


@pytest.mark.parametrize("q", CLIENT_QUERIES)
@pytest.mark.parametrize("passkey", [PASSKEY, ""])
def test_client_queries_are_scanned_to_the_generic_request(q, passkey):
    assert _same(q, passkey)  # taken by the scanner, and the same request


@pytest.mark.parametrize(
    "q",
    [
        query(port=b"0"),
        query(port=b"65536"),
        query(uploaded=b"-1"),
        query(uploaded=b"1" * 19),  # past the plain-digit bound: the generic parser decides
        query(left=b""),
        query(event=b"bogus"),
        query(compact=b"2"),
        query(info_hash=INFO_HASH[:19]),
        query(peer_id=PEER_ID + b"x"),
        query(key=b"k" * 65),
        query(ipv4=b"1" * 16),
        query(passkey="é".encode()),
        query(info_hash=None),
        query() + b"&port=1",  # repeated
        query() + b"&x=1&x=2",  # an ignored one, repeated
        query() + b"&",  # an empty part
        query() + b"&=1",  # an empty name
        query() + b"&x=%4",  # a bad escape, in a parameter nobody reads
        query() + b"&%78=1",  # an escaped name
        b"port=1&" + b"x" * 4100,  # oversize
        b"",
    ],
)
def test_anything_unusual_is_left_to_the_generic_parser(q):
    assert query_scan.scan_announce(q, "") is None
    _same(q, "")


@pytest.mark.parametrize(
    ("plain", "escaped"),
    [
        (b"port=51413", b"port=%35%31%34%31%33"),
        (b"left=1000", b"left=%31000"),
        (b"event=started", b"event=%73tarted"),
    ],
)
def test_escaped_counters_and_events_are_left_to_the_generic_parser(plain, escaped):
    q = query().replace(plain, escaped)
    assert q != query() and query_scan.scan_announce(q, PASSKEY) is None
    assert parse_announce(q, passkey=PASSKEY) == parse_announce_generic(query(), passkey=PASSKEY)


def test_every_byte_value_of_the_hashes_decodes_as_the_generic_parser_does():
    rng = random.Random(7)
    for _ in range(500):
        info_hash, peer_id = rng.randbytes(20), rng.randbytes(20)
        q = query(info_hash=info_hash, peer_id=peer_id)
        assert _same(q, PASSKEY)
        raw = (  # unreserved bytes left as they are, as some clients send them
            b"info_hash="
            + quote_from_bytes(info_hash, safe="-_.~!*'()").encode()
            + b"&peer_id="
            + quote_from_bytes(peer_id, safe="").lower().encode()
            + b"&port=1&uploaded=0&downloaded=0&left=0"
        )
        assert _same(raw, PASSKEY)


def test_fuzzed_queries_are_scanned_only_to_the_generic_request():
    rng = random.Random(4321)
    bases = CLIENT_QUERIES
    taken = 0
    for _ in range(6000):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            pos = rng.randrange(len(data) + 1)
            if op < 0.4 and data:
                data[min(pos, len(data) - 1)] = rng.choice(b"%&=+0123456789aFxz\x00\xff")
            elif op < 0.7:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
            else:
                del data[pos : pos + rng.randint(1, 6)]
        taken += _same(bytes(data), rng.choice([PASSKEY, ""]))
    assert taken > 600  # the unmutated and harmlessly mutated ones


def test_parse_announce_uses_the_scanner_only_compiled(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "tracker.announce.wire_http.scan_announce",
        lambda q, p: calls.append(q) or query_scan.scan_announce(q, p),
    )
    req = parse_announce(query(), passkey=PASSKEY)
    assert req == parse_announce_generic(query(), passkey=PASSKEY)
    assert bool(calls) is query_scan.COMPILED
