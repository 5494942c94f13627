"""UDP tracker protocol (BEP 15) with passkeys carried in BEP 41 URL data.

Pure code, no Django import: packet parsing and encoding, stateless connection ids, the
per-address connect limiter and :class:`UdpTracker`, which answers one datagram with the same
announce and scrape rules as HTTP (``tracker.announce.handler.announce_outcome`` and
``scrape_counts``: one implementation, two wires). ``trackerd`` feeds it datagrams from its
asyncio sockets; the tests and the fuzzer call :meth:`UdpTracker.handle` directly.

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
  ``handler.scrape_counts``) and zeros for any other hash, which tells nothing of it.
- error reply (8 + message): ``i32 3``, ``i32 transaction_id``, the message (UTF-8).

BEP 41 options follow the 98 announce bytes: type 0x0 EndOfOptions and 0x1 NOP are one byte;
every other type is ``type, length, data``; 0x2 URLData parts are concatenated (a client may
split a long URL over several); unknown types are skipped by their length. The URL data is the
announce URL's path and query: ``/announce/<passkey>`` is required (the query is ignored).

Connection ids are stateless (any worker process can check any id): ``u32 seconds`` + the
first 4 bytes of BLAKE2b keyed with the secret over those seconds, the client's address and its
port. Valid for ``CONNECTION_ID_LIFETIME`` (BEP 15: 2 minutes); an id made with the previous
secret is still accepted after a rotation.

Silence versus an error packet. A reply to a datagram whose source address is not proven
(no valid connection id) could be aimed at a third party by spoofing, so such a reply is never
larger than the request (no amplification) and costs the sender a packet of its own:

- silent: datagrams under 16 bytes; a connect (action 0) without the protocol id; a connect
  over the per-address rate limit; an unknown action without a valid connection id; any error
  whose packet would be larger than the request (e.g. a 16-byte announce with a bad id).
- error packet: announce or scrape with a wrong (``Invalid connection ID``) or expired
  (``Connection ID expired``) id, as BEP 15 expects, when no larger than the request; with a
  valid id every error is sent: malformed or oversize request, unknown action, missing or
  unknown passkey, scrape of more than 74 hashes, and every refusal of the announce rules.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tracker.announce.handler import (
    Authority,
    Policy,
    announce_outcome,
    reply_interval,
    scrape_counts,
)
from tracker.announce.protocol import MAX_INT, AnnounceRequest, Refusal
from tracker.announce.store import MemoryPeerStore

log = logging.getLogger(__name__)

PROTOCOL_ID = 0x41727101980  # BEP 15: the connect request's magic connection id
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR = 0, 1, 2, 3
CONNECTION_ID_LIFETIME = 120  # seconds (BEP 15: a tracker accepts an id for 2 minutes)
MAX_SCRAPE_HASHES = 74  # BEP 15: what fits one scrape packet
ANNOUNCE_SIZE = 98
MAX_DATAGRAM = 2048  # bytes; a longer request is refused (a full scrape is 1,496)
MAX_URL_DATA = 1024  # bytes of BEP 41 URL data
# Peers per reply, so that a reply fits one unfragmented datagram: 20 + 200 x 6 = 1,220 bytes
# over IPv4; 20 + 66 x 18 = 1,208 bytes over IPv6 (its minimum MTU leaves 1,232 for UDP data).
MAX_PEERS_V4 = 200
MAX_PEERS_V6 = 66
OPTION_END, OPTION_NOP, OPTION_URL_DATA = 0x0, 0x1, 0x2
ANNOUNCE_PATH = b"/announce/"
MISSING_PASSKEY = "Missing passkey: use the announce URL with your passkey"
# BEP 15 event codes (4: BEP 21 "paused", as libtorrent sends it) -> the HTTP event names.
EVENTS = ("", "completed", "started", "stopped", "paused")

_ACTION = struct.Struct(">II")  # action, transaction_id (after the 8-byte connection id)
_PROTOCOL_ID = PROTOCOL_ID.to_bytes(8, "big")
_ANNOUNCE = struct.Struct(">8sII20s20sqqqiIIiH")
_CONNECT_HEAD = struct.Struct(">II")
_ANNOUNCE_REPLY = struct.Struct(">IIIII")
_ERROR_HEAD = struct.Struct(">II")
_SCRAPE_HEAD = struct.Struct(">II")
_SCRAPE_ENTRY = struct.Struct(">III")
_TIME = struct.Struct(">I")
_PORT = struct.Struct(">H")
_I32_MAX = 2**31 - 1
assert _ANNOUNCE.size == ANNOUNCE_SIZE


def derive_secret(secret: str | bytes, *, purpose: bytes = b"pbts:udp-connection-id:v1") -> bytes:
    """A 32-byte key for connection ids from any secret text: HMAC-SHA256 keyed with the
    secret over a fixed purpose label (a PRF-based KDF, as RFC 5869's expand step), so
    ``SECRET_KEY`` can serve when ``PBTS_UDP_SECRET`` is not set (nothing new to configure)
    without the site key itself, or anything that reveals it, ever being used here."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, purpose, hashlib.sha256).digest()


class ConnectionIds:
    """Stateless BEP 15 connection ids: 8 bytes = ``u32`` seconds + a 4-byte keyed MAC.

    The MAC is BLAKE2b (keyed, 4-byte digest) over the 4 bytes of seconds, the client's
    address (its text form as the socket reports it) and its port (2 bytes). An id is valid
    for ``lifetime`` seconds after it was issued, under the current secret or the previous one
    (rotation: set the old secret as the previous one, the new as current; ids issued before
    stay valid for their lifetime).

    Args:
        secret: the current key (see :func:`derive_secret`); previous: the key before the last
            rotation (``b""``: none); clock: seconds (``time.time``; tests pass a fake).
    """

    VALID, EXPIRED, INVALID = 0, 1, 2

    def __init__(
        self,
        secret: bytes,
        previous: bytes = b"",
        *,
        lifetime: int = CONNECTION_ID_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a connection id secret is required")
        self._macs = [hashlib.blake2b(key=secret[:64], digest_size=4)]
        if previous:
            self._macs.append(hashlib.blake2b(key=previous[:64], digest_size=4))
        self._lifetime = lifetime
        self._clock = clock

    def issue(self, host: str, port: int) -> bytes:
        """A fresh 8-byte connection id for the client at ``host``/``port``."""
        stamp = _TIME.pack(int(self._clock()) & 0xFFFFFFFF)
        tag = self._macs[0].copy()
        tag.update(stamp + host.encode() + _PORT.pack(port))
        return stamp + tag.digest()

    def check(self, connection_id: bytes, host: str, port: int) -> int:
        """:attr:`VALID`, :attr:`EXPIRED` (a genuine id older than the lifetime) or
        :attr:`INVALID` (not made by us for this address and port, or from the future), for
        the 8 bytes ``connection_id`` as the client sent them."""
        message = connection_id[:4] + host.encode() + _PORT.pack(port)
        given = connection_id[4:8]
        for mac in self._macs:
            tag = mac.copy()
            tag.update(message)
            if hmac.compare_digest(tag.digest(), given):
                stamp = int.from_bytes(message[:4], "big")
                age = (int(self._clock()) - stamp) & 0xFFFFFFFF  # modulo 2**32: survives 2106
                if age <= self._lifetime:
                    return self.VALID
                return self.EXPIRED if age < 0x80000000 else self.INVALID
        return self.INVALID


class ConnectLimiter:
    """Per-address token bucket for connect requests: ``per_minute`` tokens a minute, at most
    a quarter of that (15 s worth, at least 1) saved up. ``per_minute`` 0 disables it.

    Memory is bounded: buckets that have refilled are dropped every ``prune_seconds``, and if
    more than ``max_entries`` addresses are tracked even so, all are forgotten.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        prune_seconds: float = 60.0,
        max_entries: int = 200_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 4.0)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}
        self._prune_seconds = prune_seconds
        self._max_entries = max_entries
        self._next_prune = clock() + prune_seconds

    def allow(self, host: str) -> bool:
        """Take one token for ``host``; ``False`` when its bucket is empty (drop the request)."""
        if self.rate <= 0:
            return True
        now = self._clock()
        if now >= self._next_prune or len(self._buckets) > self._max_entries:
            self._prune(now)
        bucket = self._buckets.get(host)
        if bucket is None:
            self._buckets[host] = [self.capacity - 1.0, now]
            return True
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _prune(self, now: float) -> None:
        self._next_prune = now + self._prune_seconds
        rate, capacity = self.rate, self.capacity
        self._buckets = {
            host: bucket
            for host, bucket in self._buckets.items()
            if bucket[0] + (now - bucket[1]) * rate < capacity
        }
        if len(self._buckets) > self._max_entries:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


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
        raise Refusal(f"Invalid {name}: must be an integer from 0 to {MAX_INT}")
    if not port:
        raise Refusal("Invalid port: must be 1-65535")
    if not 0 <= event < len(EVENTS):
        raise Refusal("Invalid event")
    request = AnnounceRequest(
        info_hash,
        peer_id,
        port,
        uploaded,
        downloaded,
        left,
        EVENTS[event],
        None if numwant < 0 else min(numwant, MAX_PEERS_V6 if v6 else MAX_PEERS_V4),
        True,  # compact: BEP 15 peers are always compact
        True,  # no_peer_id
        b"%08X" % key,
        passkey,
        "",  # BEP 7 ipv4=/ipv6= have no UDP form
        "",
    )
    return request, ip


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


@dataclass(slots=True)
class UdpCounters:
    """What the UDP front end saw (packets, not tracker statistics): replies by kind, dropped
    datagrams, and ``failures``, unexpected exceptions caught (a bug if ever non-zero)."""

    connects: int = 0
    announces: int = 0
    scrapes: int = 0
    errors: int = 0
    dropped: int = 0
    failures: int = 0


class UdpTracker:
    """Answers BEP 15 datagrams with the shared announce and scrape rules.

    Args:
        auth, store, policy: as for the HTTP handler (``tracker.announce.handler``).
        snatches: ``{torrent_id} -> {torrent_id: completed count}`` for scrapes.
        ids: the connection id issuer/checker; limiter: connects per address.
        trusted: addresses (text) whose announce ``ip`` field is believed (a trusted proxy);
            from anyone else the packet's source address counts.
    """

    def __init__(
        self,
        *,
        auth: Authority,
        store: MemoryPeerStore,
        policy: Policy,
        snatches: Callable[[set[int]], dict[int, int]],
        ids: ConnectionIds,
        limiter: ConnectLimiter,
        trusted: frozenset[str] = frozenset(),
    ) -> None:
        self.auth = auth
        self.store = store
        self.policy = policy
        self.snatches = snatches
        self.ids = ids
        self.limiter = limiter
        self.trusted = trusted
        self.counters = UdpCounters()

    def handle(self, data: bytes, addr: tuple) -> bytes | None:
        """The reply to one datagram ``data`` from ``addr`` (``(host, port, ...)`` as the socket
        gives it), or ``None`` for silence. Never raises."""
        try:
            reply = self._dispatch(data, addr)
        except Exception:
            self.counters.failures += 1
            log.exception("UDP datagram from %s failed; dropped", addr[0] if addr else "?")
            return None
        if reply is None:
            self.counters.dropped += 1
        return reply

    def _dispatch(self, data: bytes, addr: tuple) -> bytes | None:
        size = len(data)
        if size < 16:
            return None
        action, transaction_id = _ACTION.unpack_from(data, 8)
        host, port = addr[0], addr[1]
        if action == ACTION_CONNECT:
            if data[:8] != _PROTOCOL_ID or not self.limiter.allow(host):
                return None
            self.counters.connects += 1
            return _CONNECT_HEAD.pack(ACTION_CONNECT, transaction_id) + self.ids.issue(host, port)
        status = self.ids.check(data[:8], host, port)
        if status != ConnectionIds.VALID:
            if action not in (ACTION_ANNOUNCE, ACTION_SCRAPE):
                return None
            message = "Connection ID expired" if status == ConnectionIds.EXPIRED else ""
            return self._error(transaction_id, message or "Invalid connection ID", size, False)
        if size > MAX_DATAGRAM:
            return self._error(transaction_id, "Request too long", size, True)
        if action == ACTION_ANNOUNCE:
            return self._announce(data, host, transaction_id)
        if action == ACTION_SCRAPE:
            return self._scrape(data, transaction_id)
        return self._error(transaction_id, "Unknown action", size, True)

    def _error(self, transaction_id: int, message: str, size: int, proven: bool) -> bytes | None:
        reply = encode_error(transaction_id, message)
        if not proven and len(reply) > size:
            return None  # never amplify towards an unproven (possibly spoofed) address
        self.counters.errors += 1
        return reply

    def _announce(self, data: bytes, host: str, transaction_id: int) -> bytes | None:
        v6 = ":" in host
        try:
            req, ip_field = parse_announce_packet(data, v6=v6)
            client_ip = host
            if ip_field and host in self.trusted:
                client_ip = str(ipaddress.IPv4Address(ip_field))
            outcome = announce_outcome(
                req, client_ip=client_ip, auth=self.auth, store=self.store, policy=self.policy
            )
        except Refusal as exc:
            return self._error(transaction_id, exc.reason, len(data), True)
        self.counters.announces += 1
        return encode_announce_reply(
            transaction_id,
            interval=reply_interval(self.policy.rules),
            leechers=outcome.incomplete,
            seeders=outcome.complete,
            peers=outcome.peers6 if v6 else outcome.peers4,
        )

    def _scrape(self, data: bytes, transaction_id: int) -> bytes | None:
        body = len(data) - 16
        count = body // 20
        if body % 20:
            return self._error(transaction_id, "Malformed scrape: 20-byte info_hashes", 0, True)
        if count == 0:
            return self._error(
                transaction_id, "Full scrape is not allowed: give info_hash", 0, True
            )
        if count > MAX_SCRAPE_HASHES:
            return self._error(
                transaction_id, f"Too many info_hash values (at most {MAX_SCRAPE_HASHES})", 0, True
            )
        hashes = [data[16 + 20 * i : 36 + 20 * i] for i in range(count)]
        files = scrape_counts(
            list(dict.fromkeys(hashes)), auth=self.auth, store=self.store, snatches=self.snatches
        )
        self.counters.scrapes += 1
        return encode_scrape_reply(transaction_id, (files.get(h, (0, 0, 0)) for h in hashes))
