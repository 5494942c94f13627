"""The UDP wire (BEP 15) with passkeys carried in BEP 41 URL data: packets in and out.

Pure code, no Django import: parsing a datagram into the shared records (an
:class:`~tracker.announce.records.AnnounceRequest`, a scrape's info_hashes) and encoding the
replies. ``udp_tracker.UdpTracker`` answers datagrams with them, the connection ids and the
shared rules (``rules.announce_outcome``, ``rules.scrape_counts``: one implementation, two
wires).

Packets (BEP 15; big-endian; sizes in bytes):

- connect request (16): ``u64 protocol_id = 0x41727101980``, ``i32 action = 0``,
  ``i32 transaction_id``; reply (16): ``i32 0``, ``i32 transaction_id``, ``u64 connection_id``.
- announce request (98 + BEP 41 options): ``u64 connection_id``, ``i32 1``, ``i32
  transaction_id``, ``20s info_hash``, ``20s peer_id``, ``i64 downloaded``, ``i64 left``,
  ``i64 uploaded``, ``i32 event`` (0 none, 1 completed, 2 started, 3 stopped; 4 paused as
  libtorrent sends for BEP 21), ``u32 ip``, ``u32 key``, ``i32 num_want`` (-1: default),
  ``u16 port``; reply (20 + peers): ``i32 1``, ``i32 transaction_id``, ``i32 interval``,
  ``i32 leechers``, ``i32 seeders``, then 6-byte IPv4 peers to an IPv4 client or 18-byte IPv6
  peers to an IPv6 client (BEP 15, IPv6 section).
- scrape request (16 + 20 x N, 1 <= N <= 74): ``u64 connection_id``, ``i32 2``, ``i32
  transaction_id``, N info_hashes; reply (8 + 12 x N): ``i32 2``, ``i32 transaction_id``, then
  per hash in request order ``i32 seeders``, ``i32 completed``, ``i32 leechers``. A scrape
  has no room for BEP 41 options (its length gives the hash count) and clients send none, so
  a UDP scrape carries no passkey: it gets the counts of registered torrents (the shared rule,
  ``rules.scrape_counts``) and zeros for any other hash, which tells nothing of it.
- error reply (8 + message): ``i32 3``, ``i32 transaction_id``, the message (UTF-8).

BEP 41 options follow the 98 announce bytes: type 0x0 EndOfOptions and 0x1 NOP are one byte;
every other type is ``type, length, data``; 0x2 URLData parts are concatenated (a client may
split a long URL over several); unknown types are skipped by their length. The URL data is the
announce URL's path and query: ``/announce/<passkey>`` is required (the query is ignored).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from tracker.announce.records import (
    INVALID_EVENT,
    INVALID_PORT,
    AnnounceRequest,
    Event,
    Refusal,
    invalid_counter,
)
from tracker.announce.rules import MAX_SCRAPE_HASHES as RULES_SCRAPE_HASHES
from tracker.announce.rules import check_scrape_size

PROTOCOL_ID = 0x41727101980  # BEP 15: the connect request's magic connection id
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR = 0, 1, 2, 3
ANNOUNCE_SIZE = 98
MAX_DATAGRAM = 2048  # bytes; a longer request is refused (a full scrape is 1,496)
MAX_URL_DATA = 1024  # bytes of BEP 41 URL data
#: Info_hashes that fit one scrape packet (BEP 15); the site's limit applies too.
PACKET_SCRAPE_HASHES = 74
MAX_SCRAPE_HASHES = min(RULES_SCRAPE_HASHES, PACKET_SCRAPE_HASHES)
# Peers per reply, so that a reply fits one unfragmented datagram: 20 + 200 x 6 = 1,220 bytes
# over IPv4; 20 + 66 x 18 = 1,208 bytes over IPv6 (its minimum MTU leaves 1,232 for UDP data).
MAX_PEERS_V4 = 200
MAX_PEERS_V6 = 66
OPTION_END, OPTION_NOP, OPTION_URL_DATA = 0x0, 0x1, 0x2
ANNOUNCE_PATH = b"/announce/"
MISSING_PASSKEY = "Missing passkey: use the announce URL with your passkey"
#: BEP 15's event codes -> :class:`~tracker.announce.records.Event` (4: BEP 21 ``paused``, as
#: libtorrent sends it).
UDP_EVENTS = (Event.NONE, Event.COMPLETED, Event.STARTED, Event.STOPPED, Event.PAUSED)

#: After the 8-byte connection id: action, transaction_id.
ACTION_HEAD = struct.Struct(">II")
PROTOCOL_ID_BYTES = PROTOCOL_ID.to_bytes(8, "big")
_ANNOUNCE = struct.Struct(">8sII20s20sqqqiIIiH")
_CONNECT_HEAD = struct.Struct(">II")
_ANNOUNCE_REPLY = struct.Struct(">IIIII")
_ERROR_HEAD = struct.Struct(">II")
_SCRAPE_HEAD = struct.Struct(">II")
_SCRAPE_ENTRY = struct.Struct(">III")
_I32_MAX = 2**31 - 1
assert _ANNOUNCE.size == ANNOUNCE_SIZE


def url_data(options: bytes) -> bytes:
    """The BEP 41 URL data of an announce's options (everything after its 98 bytes): the data
    of every URLData option (type 0x2) concatenated, up to EndOfOptions (0x0) or the end;
    NOP (0x1) and unknown types (skipped by their length byte) carry none.

    Raises:
        Refusal: an option's length runs past the datagram; more than ``MAX_URL_DATA`` bytes.
    """
    n = len(options)
    if n >= 2 and options[0] == OPTION_URL_DATA:  # the usual: one option, maybe EndOfOptions
        end = options[1] + 2
        if end == n or (end + 1 == n and options[end] == OPTION_END):
            return options[2:end]
    parts = []
    size = 0
    i = 0
    while i < n:
        kind = options[i]
        if kind == OPTION_END:
            break
        if kind == OPTION_NOP:
            i += 1
            continue
        if i + 1 >= n or i + 2 + options[i + 1] > n:
            raise Refusal("Malformed request options (BEP 41): an option runs past the packet")
        length = options[i + 1]
        if kind == OPTION_URL_DATA:
            size += length
            if size > MAX_URL_DATA:
                raise Refusal("URL data too long")
            parts.append(options[i + 2 : i + 2 + length])
        i += 2 + length
    return b"".join(parts)


def passkey_from_url(url: bytes) -> str:
    """The passkey of URL data ``/announce/<passkey>[?query]`` (the query is ignored).

    Raises:
        Refusal: no URL data, or a path other than ``/announce/<something>`` (the member used
            a URL without their passkey).
    """
    path = url.partition(b"?")[0]
    if not path.startswith(ANNOUNCE_PATH) or len(path) == len(ANNOUNCE_PATH):
        raise Refusal(MISSING_PASSKEY)
    passkey = path[len(ANNOUNCE_PATH) :].rstrip(b"/")
    return passkey.decode("latin-1")  # a non-hex passkey is refused as unknown by the rules


def encode_options(url: bytes, *, chunk: int = 255) -> bytes:
    """BEP 41 options carrying ``url`` as URLData, split into ``chunk``-byte options, then
    EndOfOptions (what a client appends; used by the tests and the benchmark)."""
    out = [
        bytes((OPTION_URL_DATA, len(part))) + part
        for part in (url[i : i + chunk] for i in range(0, len(url), chunk))
    ]
    return b"".join(out) + bytes((OPTION_END,))


def parse_announce_packet(data: bytes, *, v6: bool = False) -> tuple[AnnounceRequest, int]:
    """Parse a BEP 15 announce (98 bytes, then BEP 41 options) into the request the shared
    rules take; returns ``(request, ip_field)``.

    ``ip_field`` is the announce's ``u32`` IPv4 address (0: none); the caller believes it only
    from a trusted source. The passkey comes from the URL data (:func:`passkey_from_url`).
    ``num_want`` -1 (any negative) means the default; it is capped so that the reply fits one
    datagram (``MAX_PEERS_V4``, or ``MAX_PEERS_V6`` when ``v6``). The 4-byte ``key`` becomes
    8 hex digits, as clients send it over HTTP.

    Raises:
        Refusal: short packet, missing passkey, malformed options, negative counters, port 0,
            an unknown event code.
    """
    if len(data) < ANNOUNCE_SIZE:
        raise Refusal(f"Malformed announce: {ANNOUNCE_SIZE} bytes expected, got {len(data)}")
    (_, _, _, info_hash, peer_id, downloaded, left, uploaded, event, ip, key, numwant, port) = (
        _ANNOUNCE.unpack_from(data)
    )
    passkey = passkey_from_url(url_data(data[ANNOUNCE_SIZE:]))
    if downloaded < 0 or left < 0 or uploaded < 0:
        name = "downloaded" if downloaded < 0 else "left" if left < 0 else "uploaded"
        raise Refusal(invalid_counter(name))
    if not port:
        raise Refusal(INVALID_PORT)
    if not 0 <= event < len(UDP_EVENTS):
        raise Refusal(INVALID_EVENT)
    request = AnnounceRequest(
        info_hash,
        peer_id,
        port,
        uploaded,
        downloaded,
        left,
        UDP_EVENTS[event],
        None if numwant < 0 else min(numwant, MAX_PEERS_V6 if v6 else MAX_PEERS_V4),
        True,  # compact: BEP 15 peers are always compact
        True,  # no_peer_id
        b"%08X" % key,
        passkey,
        "",  # BEP 7 ipv4=/ipv6= have no UDP form
        "",
    )
    return request, ip


def parse_scrape_packet(data: bytes) -> list[bytes]:
    """The info_hashes of a BEP 15 scrape (16 bytes, then 20 per hash), in request order
    (duplicates kept: the reply has an entry per requested hash).

    Raises:
        Refusal: a body that is not whole 20-byte hashes; no hash (a full scrape); more than
            :data:`MAX_SCRAPE_HASHES`.
    """
    body = len(data) - 16
    if body % 20:
        raise Refusal("Malformed scrape: 20-byte info_hashes")
    check_scrape_size(body // 20, MAX_SCRAPE_HASHES)
    return [data[at : at + 20] for at in range(16, len(data), 20)]


def encode_connect(transaction_id: int, connection_id: bytes) -> bytes:
    """BEP 15 connect reply (16 bytes): the 8-byte ``connection_id`` as issued."""
    return _CONNECT_HEAD.pack(ACTION_CONNECT, transaction_id) + connection_id


def encode_announce_reply(
    transaction_id: int, *, interval: int, leechers: int, seeders: int, peers: bytes
) -> bytes:
    """BEP 15 announce reply: ``interval`` seconds, counts, compact peers (6 or 18 bytes each)."""
    return (
        _ANNOUNCE_REPLY.pack(
            ACTION_ANNOUNCE,
            transaction_id,
            min(interval, _I32_MAX),
            min(leechers, _I32_MAX),
            min(seeders, _I32_MAX),
        )
        + peers
    )


def encode_scrape_reply(transaction_id: int, entries: Iterable[tuple[int, int, int]]) -> bytes:
    """BEP 15 scrape reply; ``entries`` are ``(seeders, completed, leechers)`` per requested
    hash, in request order."""
    pack = _SCRAPE_ENTRY.pack
    return _SCRAPE_HEAD.pack(ACTION_SCRAPE, transaction_id) + b"".join(
        [pack(min(s, _I32_MAX), min(c, _I32_MAX), min(leech, _I32_MAX)) for s, c, leech in entries]
    )


def encode_error(transaction_id: int, message: str) -> bytes:
    """BEP 15 error reply: action 3, the transaction id, the message (UTF-8)."""
    return _ERROR_HEAD.pack(ACTION_ERROR, transaction_id) + message.encode()
