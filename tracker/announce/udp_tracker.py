"""The UDP tracker (BEP 15, passkeys in BEP 41 URL data): one datagram in, one reply or none.

Pure code, no Django import: stateless connection ids, the per-address connect limiter and
:class:`UdpTracker`, which answers a datagram (packets: ``wire_udp``) with the same announce and
scrape rules as HTTP (``rules.announce_outcome`` and ``rules.scrape_counts``: one
implementation, two wires). ``trackerd`` feeds it datagrams from its asyncio sockets; the tests
and the fuzzer call :meth:`UdpTracker.handle` directly.

Connection ids are stateless (any worker process can check any id): ``u32 seconds`` + the
first 4 bytes of BLAKE2b keyed with the secret over those seconds and the client's address
(not its port: BEP 15 does not ask for it, and libtorrent reuses one id across its sockets to a
tracker). Valid for ``CONNECTION_ID_LIFETIME`` (BEP 15: 2 minutes); an id made with the previous
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
from collections.abc import Callable
from dataclasses import dataclass

from tracker.announce.records import REQUEST_TOO_LONG, Pending, Refusal
from tracker.announce.rules import (
    Authority,
    Policy,
    announce_outcome,
    reply_interval,
    scrape_counts,
)
from tracker.announce.store import MemoryPeerStore
from tracker.announce.wire_udp import (
    ACTION_ANNOUNCE,
    ACTION_CONNECT,
    ACTION_HEAD,
    ACTION_SCRAPE,
    MAX_DATAGRAM,
    PROTOCOL_ID_BYTES,
    encode_announce_reply,
    encode_connect,
    encode_error,
    encode_scrape_reply,
    parse_announce_packet,
    parse_scrape_packet,
)

log = logging.getLogger(__name__)

CONNECTION_ID_LIFETIME = 120  # seconds (BEP 15: a tracker accepts an id for 2 minutes)
_TIME = struct.Struct(">I")


def derive_secret(secret: str | bytes, *, purpose: bytes = b"pbts:udp-connection-id:v1") -> bytes:
    """A 32-byte key for connection ids from any secret text: HMAC-SHA256 keyed with the
    secret over a fixed purpose label (a PRF-based KDF, as RFC 5869's expand step), so
    ``SECRET_KEY`` can serve when ``PBTS_UDP_SECRET`` is not set (nothing new to configure)
    without the site key itself, or anything that reveals it, ever being used here."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, purpose, hashlib.sha256).digest()


class ConnectionIds:
    """Stateless BEP 15 connection ids: 8 bytes = ``u32`` seconds + a 4-byte keyed MAC.

    The MAC is BLAKE2b (keyed, 4-byte digest) over the 4 bytes of seconds and the client's
    address (its text form as the socket reports it), not its port: BEP 15 does not bind an
    id to the port, and libtorrent 2.0.8 reuses one id per tracker across its sockets (bound
    to the port, a second torrent's announces were refused for up to a minute). An id is valid
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

    def issue(self, host: str) -> bytes:
        """A fresh 8-byte connection id for the client at address ``host`` (any of its ports)."""
        stamp = _TIME.pack(int(self._clock()) & 0xFFFFFFFF)
        tag = self._macs[0].copy()
        tag.update(stamp + host.encode())
        return stamp + tag.digest()

    def check(self, connection_id: bytes, host: str) -> int:
        """:attr:`VALID`, :attr:`EXPIRED` (a genuine id older than the lifetime) or
        :attr:`INVALID` (not made by us for this address, or from the future), for the 8 bytes
        ``connection_id`` as the client sent them; the port it came from does not matter."""
        message = connection_id[:4] + host.encode()
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
        auth, store, policy: as for the HTTP wire (``wire_http.handle_announce``).
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
        gives it), or ``None`` for silence. Never raises, but for
        :class:`~tracker.announce.records.Pending` (an authority that must read the database
        first, on an event loop: await its future, then hand the datagram in again)."""
        try:
            reply = self._dispatch(data, addr)
        except Pending:
            raise
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
        action, transaction_id = ACTION_HEAD.unpack_from(data, 8)
        host = addr[0]
        if action == ACTION_CONNECT:
            if data[:8] != PROTOCOL_ID_BYTES or not self.limiter.allow(host):
                return None
            self.counters.connects += 1
            return encode_connect(transaction_id, self.ids.issue(host))
        status = self.ids.check(data[:8], host)
        if status != ConnectionIds.VALID:
            if action not in (ACTION_ANNOUNCE, ACTION_SCRAPE):
                return None
            message = "Connection ID expired" if status == ConnectionIds.EXPIRED else ""
            return self._error(transaction_id, message or "Invalid connection ID", size, False)
        if size > MAX_DATAGRAM:
            return self._error(transaction_id, REQUEST_TOO_LONG, size, True)
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
        try:
            hashes = parse_scrape_packet(data)
        except Refusal as exc:
            return self._error(transaction_id, exc.reason, 0, True)
        files = scrape_counts(
            list(dict.fromkeys(hashes)), auth=self.auth, store=self.store, snatches=self.snatches
        )
        self.counters.scrapes += 1
        return encode_scrape_reply(transaction_id, (files.get(h, (0, 0, 0)) for h in hashes))
