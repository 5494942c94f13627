"""The UDP wire (BEP 15, passkeys in BEP 41 URL data): options, passkeys, announce packets
into the shared request. No sockets here (see ``tracker/tests/test_trackerd.py``)."""

from __future__ import annotations

import pytest

from tracker.announce import wire_udp
from tracker.announce.records import Event, Refusal
from tracker.announce.tests.udp_helpers import HASH, PASSKEY, announce_packet

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
    assert wire_udp.url_data(options) == url


@pytest.mark.parametrize("options", [b"\x02", b"\x02\x05/an", b"\x01\x09\x10abc", b"\x02\x01"])
def test_truncated_options_are_refused(options):
    with pytest.raises(Refusal, match="BEP 41"):
        wire_udp.url_data(options)


def test_url_data_over_the_limit_is_refused():
    with pytest.raises(Refusal, match="too long"):
        wire_udp.url_data(wire_udp.encode_options(b"/" * (wire_udp.MAX_URL_DATA + 1)))


def test_encode_options_splits_long_urls_into_255_byte_options():
    url = b"/announce/" + b"x" * 600
    options = wire_udp.encode_options(url)
    assert options[0] == 2 and options[1] == 255 and options[-1] == 0
    assert wire_udp.url_data(options) == url


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
    assert wire_udp.passkey_from_url(url) == passkey


@pytest.mark.parametrize("url", [b"", b"/announce", b"/announce/", b"/scrape/abc", b"?passkey=a"])
def test_url_without_a_passkey_path_is_missing_passkey(url):
    with pytest.raises(Refusal, match="Missing passkey: use the announce URL with your passkey"):
        wire_udp.passkey_from_url(url)


@pytest.mark.parametrize(
    ("numwant", "v6", "expected"),
    [(-1, False, None), (-7, True, None), (0, False, 0), (10, False, 10), (500, False, 200),
     (500, True, 66)],
)  # fmt: skip
def test_numwant_minus_one_is_the_default_and_large_values_fit_one_datagram(numwant, v6, expected):
    req, _ = wire_udp.parse_announce_packet(announce_packet(1, numwant=numwant), v6=v6)
    assert req.numwant == expected


def test_announce_packet_becomes_the_shared_request():
    req, ip = wire_udp.parse_announce_packet(
        announce_packet(1, downloaded=3, left=4, uploaded=5, event=1, ip=7, key=0xBEEF, port=9)
    )
    assert (req.info_hash, req.peer_id) == (HASH, b"-TR4060-".ljust(20, b"x"))
    assert (req.downloaded, req.left, req.uploaded, req.port) == (3, 4, 5, 9)
    assert (req.event, req.key, req.passkey, ip) == (Event.COMPLETED, b"0000BEEF", PASSKEY, 7)
    assert req.compact and (req.ipv4, req.ipv6) == ("", "")
    events = [
        wire_udp.parse_announce_packet(announce_packet(1, event=e))[0].event for e in range(5)
    ]
    assert events == [Event.NONE, Event.COMPLETED, Event.STARTED, Event.STOPPED, Event.PAUSED]
