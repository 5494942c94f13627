"""The HTTP wire: parsing announce/scrape query strings and encoding replies."""

import random
from urllib.parse import quote_from_bytes

import fastbencode
import pytest

from tracker.announce.records import Event, Refusal
from tracker.announce.wire_http import (
    MAX_QUERY_BYTES,
    encode_announce,
    encode_announce_dicts,
    encode_failure,
    encode_scrape,
    parse_announce,
    parse_scrape,
    unquote,
)

INFO_HASH = bytes(range(20))
PEER_ID = b"-TR4060-abcdefghijkl"


def query(**overrides) -> bytes:
    params = {
        "info_hash": INFO_HASH,
        "peer_id": PEER_ID,
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": b"1000",
        "event": b"started",
    }
    params.update(overrides)
    parts = []
    for name, value in params.items():
        if value is None:
            continue
        parts.append(name.encode() + b"=" + quote_from_bytes(value, safe="").encode())
    return b"&".join(parts)


def test_parse_announce_reads_binary_hashes_and_numbers():
    req = parse_announce(query(), passkey="a" * 32)
    assert req.info_hash == INFO_HASH and req.peer_id == PEER_ID
    assert (req.port, req.uploaded, req.downloaded, req.left) == (51413, 0, 0, 1000)
    assert req.event is Event.STARTED and req.compact is True and req.numwant is None
    assert req.passkey == "a" * 32


def test_parse_announce_reads_passkey_parameter_of_the_original_form():
    req = parse_announce(query(passkey=b"b" * 32))
    assert req.passkey == "b" * 32


def test_libtorrent_style_query_with_extra_parameters_parses():
    q = query(key=b"96EC08C3", numwant=b"200", compact=b"1", no_peer_id=b"1")
    q += b"&corrupt=0&supportcrypto=1&redundant=0"
    req = parse_announce(q)
    assert req.numwant == 200 and req.no_peer_id and req.key == b"96EC08C3"


def test_aria2_raw_byte_key_is_accepted():
    req = parse_announce(query(key=bytes([0xFF, 0x00, 0x10, 0x80, 1, 2, 3, 4])))
    assert len(req.key) == 8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"info_hash": None}, "Missing info_hash"),
        ({"info_hash": bytes(19)}, "must be 20 bytes, got 19"),
        ({"info_hash": bytes(21)}, "must be 20 bytes, got 21"),
        ({"peer_id": bytes(19)}, "Invalid peer_id"),
        ({"port": b"0"}, "Invalid port"),
        ({"port": b"65536"}, "Invalid port"),
        ({"port": None}, "Missing port"),
        ({"uploaded": b"-1"}, "Invalid uploaded"),
        ({"uploaded": b"abc"}, "Invalid uploaded"),
        ({"downloaded": b"99999999999999999999999"}, "Invalid downloaded"),
        ({"left": b"9223372036854775808"}, "Invalid left"),
        ({"left": b""}, "Invalid left"),
        ({"left": None}, "Missing left"),
        ({"event": b"bogus"}, "Invalid event"),
        ({"compact": b"2"}, "Invalid compact"),
        ({"numwant": b"-5"}, "Invalid numwant"),
        ({"key": b"k" * 65}, "Invalid key"),
    ],
)
def test_bad_announce_parameters_are_refused_with_a_plain_reason(overrides, message):
    with pytest.raises(Refusal) as err:
        parse_announce(query(**overrides))
    assert message in err.value.reason


def test_repeated_parameter_is_refused():
    with pytest.raises(Refusal, match="given twice"):
        parse_announce(query() + b"&port=1")


@pytest.mark.parametrize("bad", [b"x=%G1", b"x=%4", b"x=%", b"x=%4g", b"%ZZ=1", b"x=\\%4"])
def test_bad_percent_encoding_is_refused(bad):
    # Anywhere in the query, read or not: the name, an unused value, after a backslash.
    with pytest.raises(Refusal, match="percent-encoding"):
        parse_announce(query() + b"&" + bad)


def test_oversize_query_is_refused():
    with pytest.raises(Refusal, match="too long"):
        parse_announce(query() + b"&pad=" + b"x" * MAX_QUERY_BYTES)


def test_parse_scrape_takes_several_hashes_and_refuses_full_scrape():
    hashes = [bytes([i]) * 20 for i in range(3)]
    q = b"&".join(b"info_hash=" + quote_from_bytes(h, safe="").encode() for h in hashes)
    assert parse_scrape(q + b"&info_hash=" + quote_from_bytes(hashes[0]).encode())[0] == hashes
    with pytest.raises(Refusal, match="Full scrape"):
        parse_scrape(b"")
    with pytest.raises(Refusal, match="20 bytes"):
        parse_scrape(b"info_hash=abc")


def test_encoded_replies_are_valid_bencode():
    assert fastbencode.bdecode(encode_failure("Unknown passkey")) == {
        b"failure reason": b"Unknown passkey"
    }
    reply = fastbencode.bdecode(
        encode_announce(
            complete=1,
            incomplete=2,
            interval=1800,
            min_interval=900,
            peers=b"\x7f\x00\x00\x01\x1a\xe1",
            peers6=bytes(18),
            warning="hello",
        )
    )
    assert reply[b"peers"] == b"\x7f\x00\x00\x01\x1a\xe1" and len(reply[b"peers6"]) == 18
    assert reply[b"warning message"] == b"hello" and reply[b"min interval"] == 900
    dicts = fastbencode.bdecode(
        encode_announce_dicts(
            complete=0,
            incomplete=1,
            interval=1800,
            min_interval=900,
            peers=[(PEER_ID, "127.0.0.1", 6881)],
            no_peer_id=False,
        )
    )
    assert dicts[b"peers"] == [{b"ip": b"127.0.0.1", b"peer id": PEER_ID, b"port": 6881}]
    scrape = fastbencode.bdecode(encode_scrape({INFO_HASH: (3, 7, 2)}))
    assert scrape[b"files"][INFO_HASH] == {b"complete": 3, b"downloaded": 7, b"incomplete": 2}


def test_fuzzed_queries_only_ever_refuse():
    rng = random.Random(1234)
    base = query()
    for _ in range(5000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(data) + 1)
            if op < 0.4 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op < 0.7:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
            else:
                del data[pos : pos + rng.randint(1, 10)]
        try:
            req = parse_announce(bytes(data))
        except Refusal as refusal:
            assert refusal.reason
        else:
            assert len(req.info_hash) == 20 and 1 <= req.port <= 65535


@pytest.mark.parametrize(
    ("client_ip", "extra", "expect4", "expect6"),
    [
        ("127.0.0.1", {}, "127.0.0.1:51413", None),
        # Issue 14: another address, of either family, is ignored (not refused): the client
        # cannot be shown to own it, and an IPv4 client put a third party into swarms with it.
        ("127.0.0.1", {"ipv6": b"2a00:1450::1"}, "127.0.0.1:51413", None),
        ("127.0.0.1", {"ipv6": b"[2a00:1450::1]:6000"}, "127.0.0.1:51413", None),
        ("127.0.0.1", {"ipv4": b"1.2.3.4"}, "127.0.0.1:51413", None),
        ("127.0.0.1", {"ipv6": b"not an address"}, "127.0.0.1:51413", None),
        ("2a00:1450::2", {"ipv4": b"1.2.3.4:7000"}, None, "2a00:1450::2:51413"),
        ("2a00:1450::2", {"ipv6": b"2a00:1450::1"}, None, "2a00:1450::2:51413"),
        ("::ffff:10.0.0.5", {"ipv6": b"2a00:1450::1"}, "10.0.0.5:51413", None),
        # The request's own address is fine, and may give the port for it.
        ("2a00:1450::2", {"ipv6": b"2a00:1450::2"}, None, "2a00:1450::2:51413"),
        ("2a00:1450::2", {"ipv6": b"[2a00:1450::2]:6000"}, None, "2a00:1450::2:6000"),
        ("2a00:1450::2", {"ipv6": b"[2a00:1450::2]:70000"}, None, "2a00:1450::2:51413"),
        ("10.0.0.5", {"ipv4": b"10.0.0.5:7000"}, "10.0.0.5:7000", None),
        ("::ffff:10.0.0.5", {"ipv4": b"10.0.0.5"}, "10.0.0.5:51413", None),
    ],
)
def test_bep7_address_counts_only_when_it_is_the_requests_own(client_ip, extra, expect4, expect6):
    import ipaddress

    from tracker.announce.addresses import peer_addresses

    def show(entry):
        if not entry:
            return None
        return f"{ipaddress.ip_address(entry[:-2])}:{int.from_bytes(entry[-2:], 'big')}"

    c4, c6 = peer_addresses(client_ip, parse_announce(query(**extra)))
    assert (show(c4), show(c6)) == (expect4, expect6)


def test_unusable_client_address_is_a_refusal_not_a_crash():
    from tracker.announce.addresses import peer_addresses

    with pytest.raises(Refusal, match="IP address"):
        peer_addresses("", parse_announce(query()))


@pytest.mark.parametrize(
    "ip",
    [
        "1.2.3.4",
        "0.0.0.0",
        "01.2.3.4",  # a leading zero: refused by both
        "1.2.3",
        "256.1.1.1",
        "1.2.3.4 ",
        "::1",
        "::ffff:1.2.3.4",  # IPv4-mapped: an IPv4 entry
        "::1.2.3.4",
        "fe80::1%eth0",  # scoped: inet_pton refuses it, ipaddress takes it
        "1::2::3",
        "",
        "abc",
    ],
)
def test_addresses_parse_as_the_ipaddress_module_does(ip):
    # The inet_pton fast path must accept and refuse exactly what ipaddress does.
    import ipaddress

    from tracker.announce.addresses import compact_address

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        with pytest.raises(ValueError):
            compact_address(ip, 6881)
        return
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    entry = addr.packed + (6881).to_bytes(2, "big")
    expected = (entry, b"") if addr.version == 4 else (b"", entry)
    assert compact_address(ip, 6881) == expected


def test_a_literal_backslash_survives_percent_decoding():
    # Values are decoded by codecs.escape_decode after doubling backslashes: a "\" or "\x41"
    # sent as is must stay those bytes, not become an escape.
    peer_id = b"-TR4060-\\x41\\\\" + b"a" * 6
    req = parse_announce(query(peer_id=peer_id))
    assert req.peer_id == peer_id
    assert unquote(b"%5Cx41\\n") == b"\\x41\\n"
