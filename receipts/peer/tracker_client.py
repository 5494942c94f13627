"""Announces to the tracker: HTTP (BEP 3, compact peers BEP 23, ``peers6`` BEP 7) and UDP
(BEP 15, the URL's path and query sent as BEP 41 URL data, so a passkey URL works), tried in
the .torrent's tier order (BEP 12).

Times are seconds. The counters are the client's true totals for this session: ``uploaded`` and
``downloaded`` payload bytes, ``left`` bytes still missing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import struct
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import fastbencode

EVENTS_UDP = {"": 0, "completed": 1, "started": 2, "stopped": 3}
UDP_PROTOCOL_ID = 0x41727101980
MAX_REPLY = 1 << 20
USER_AGENT = "PBTS-peer/0.1"


class TrackerError(Exception):
    """The tracker could not be reached, answered garbage, or refused (``failure`` set)."""

    def __init__(self, message: str, *, failure: str = "") -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class AnnounceParams:
    """One announce's parameters (BEP 3)."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int
    event: str = ""
    numwant: int = 50
    key: int = 0


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    """The tracker's answer: ``interval`` and ``min_interval`` seconds, ``peers`` as (host,
    port), ``complete``/``incomplete`` counts, a ``warning`` message if any."""

    interval: int
    min_interval: int
    peers: tuple[tuple[str, int], ...]
    complete: int = 0
    incomplete: int = 0
    warning: str = ""


def http_url(url: str, p: AnnounceParams) -> str:
    """The announce URL with the BEP 3 query appended (after any query the URL already has)."""
    query = {
        "info_hash": p.info_hash,
        "peer_id": p.peer_id,
        "port": str(p.port),
        "uploaded": str(p.uploaded),
        "downloaded": str(p.downloaded),
        "left": str(p.left),
        "compact": "1",
        "numwant": str(p.numwant),
        "key": f"{p.key:08x}",
    }
    if p.event:
        query["event"] = p.event
    encoded = "&".join(
        f"{k}={urllib.parse.quote_from_bytes(v if isinstance(v, bytes) else v.encode(), safe='')}"
        for k, v in query.items()
    )
    return f"{url}{'&' if '?' in url else '?'}{encoded}"


def parse_http_reply(body: bytes) -> AnnounceResult:
    """Decode a bencoded announce reply. Raises TrackerError (``failure`` set for a BEP 3
    ``failure reason``)."""
    try:
        reply = fastbencode.bdecode(body)
    except (ValueError, TypeError):
        raise TrackerError("the tracker's reply is not bencoded") from None
    if not isinstance(reply, dict):
        raise TrackerError("the tracker's reply is not a dictionary")
    failure = reply.get(b"failure reason")
    if failure is not None:
        text = failure.decode("utf-8", "replace") if isinstance(failure, bytes) else str(failure)
        raise TrackerError(f"tracker refused: {text}", failure=text)
    peers: list[tuple[str, int]] = []
    raw = reply.get(b"peers", b"")
    if isinstance(raw, bytes):
        peers += compact_peers(raw, 6)
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, dict) and isinstance(entry.get(b"ip"), bytes):
                port = entry.get(b"port")
                if isinstance(port, int) and 0 < port < 65536:
                    peers.append((entry[b"ip"].decode("ascii", "replace"), port))
    raw6 = reply.get(b"peers6", b"")
    if isinstance(raw6, bytes):
        peers += compact_peers(raw6, 18)
    interval = _int(reply.get(b"interval"), 1800)
    warning = reply.get(b"warning message", b"")
    return AnnounceResult(
        interval=max(interval, 1),
        min_interval=_int(reply.get(b"min interval"), 0),
        peers=tuple(peers),
        complete=_int(reply.get(b"complete"), 0),
        incomplete=_int(reply.get(b"incomplete"), 0),
        warning=warning.decode("utf-8", "replace") if isinstance(warning, bytes) else "",
    )


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def compact_peers(data: bytes, size: int) -> list[tuple[str, int]]:
    """BEP 23 (6-byte IPv4) or BEP 7 (18-byte IPv6) entries; port 0 entries are skipped."""
    out = []
    for i in range(0, len(data) - size + 1, size):
        host = str(ipaddress.ip_address(data[i : i + size - 2]))
        port = int.from_bytes(data[i + size - 2 : i + size], "big")
        if port:
            out.append((host, port))
    return out


async def announce_http(url: str, params: AnnounceParams, *, timeout: float) -> AnnounceResult:
    """GET the announce (urllib in a worker thread). Raises TrackerError."""

    def fetch() -> bytes:
        request = urllib.request.Request(http_url(url, params), headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(MAX_REPLY)

    try:
        body = await asyncio.get_running_loop().run_in_executor(None, fetch)
    except OSError as exc:
        raise TrackerError(f"{urllib.parse.urlsplit(url).netloc}: {exc}") from None
    return parse_http_reply(body)


# --- UDP (BEP 15 + BEP 41) -------------------------------------------------------------


def url_data_options(url: str) -> bytes:
    """BEP 41 options carrying the URL's path and query as URLData (type 2) parts of at most
    255 bytes, then EndOfOptions (0)."""
    parts = urllib.parse.urlsplit(url)
    data = (parts.path + (f"?{parts.query}" if parts.query else "")).encode()
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)]
    return b"".join(bytes((2, len(c))) + c for c in chunks) + b"\x00"


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queue.put_nowait(data)


@dataclass
class UdpTracker:
    """One ``udp://host:port/path`` tracker."""

    url: str
    tries: int = 3
    first_timeout: float = 2.0

    async def announce(self, p: AnnounceParams, *, timeout: float) -> AnnounceResult:
        """Connect if needed, then announce. Raises TrackerError."""
        parts = urllib.parse.urlsplit(self.url)
        if not parts.hostname or not parts.port:
            raise TrackerError(f"bad UDP tracker URL {self.url}")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(parts.hostname, parts.port, type=socket.SOCK_DGRAM)
            transport, proto = await loop.create_datagram_endpoint(
                _Datagrams, remote_addr=infos[0][4]
            )
        except OSError as exc:
            raise TrackerError(f"{parts.netloc}: {exc}") from None
        v6 = infos[0][0] == socket.AF_INET6
        deadline = time.monotonic() + timeout
        try:
            # A connection id is bound to our address and port (BEP 15): each announce uses a
            # new socket, so it connects first.
            tid = random.getrandbits(31)
            reply = await self._exchange(
                transport, proto, struct.pack(">QII", UDP_PROTOCOL_ID, 0, tid), tid, deadline
            )
            if len(reply) < 16 or reply[:4] != b"\0\0\0\0":
                raise TrackerError("bad UDP connect reply")
            connection_id = struct.unpack_from(">Q", reply, 8)[0]
            tid = random.getrandbits(31)
            packet = struct.pack(
                ">QII20s20sQQQIIIiH",
                connection_id,
                1,
                tid,
                p.info_hash,
                p.peer_id,
                p.downloaded,
                p.left,
                p.uploaded,
                EVENTS_UDP[p.event],
                0,
                p.key,
                p.numwant,
                p.port,
            ) + url_data_options(self.url)
            reply = await self._exchange(transport, proto, packet, tid, deadline)
        finally:
            transport.close()
        if len(reply) < 20 or struct.unpack_from(">I", reply)[0] != 1:
            raise TrackerError("bad UDP announce reply")
        interval, leechers, seeders = struct.unpack_from(">III", reply, 8)
        return AnnounceResult(
            interval=max(interval, 1),
            min_interval=0,
            peers=tuple(compact_peers(reply[20:], 18 if v6 else 6)),
            complete=seeders,
            incomplete=leechers,
        )

    async def _exchange(
        self, transport, proto: _Datagrams, packet: bytes, tid: int, deadline: float
    ) -> bytes:
        """Send ``packet`` and wait for the reply with ``tid``; retransmit with doubling
        timeouts (BEP 15) until ``deadline``. An error reply (action 3) raises TrackerError."""
        wait = self.first_timeout
        for _ in range(self.tries):
            transport.sendto(packet)
            end = min(time.monotonic() + wait, deadline)
            while (left := end - time.monotonic()) > 0:
                try:
                    reply = await asyncio.wait_for(proto.queue.get(), left)
                except TimeoutError:
                    break
                if len(reply) < 8 or struct.unpack_from(">I", reply, 4)[0] != tid:
                    continue
                if struct.unpack_from(">I", reply)[0] == 3:
                    text = reply[8:].decode("utf-8", "replace")
                    raise TrackerError(f"tracker refused: {text}", failure=text)
                return reply
            if time.monotonic() >= deadline:
                break
            wait *= 2
        raise TrackerError(f"no answer from {urllib.parse.urlsplit(self.url).netloc}")


# --- tiers ---------------------------------------------------------------------------------


@dataclass
class Announcer:
    """The torrent's trackers (BEP 12 tiers). Each announce tries the tiers in order and the
    URLs of a tier in order; a URL that answers moves to the front of its tier. A tracker's
    ``failure reason`` is an answer: it is raised at once, not tried elsewhere."""

    tiers: list[list[str]]
    timeout: float = 15.0
    key: int = field(default_factory=lambda: int.from_bytes(os.urandom(4), "big"))
    last_url: str = ""
    _udp: dict[str, UdpTracker] = field(default_factory=dict)

    def usable(self) -> bool:
        """True when some URL is HTTP(S) or UDP."""
        return any(_scheme(u) in ("http", "https", "udp") for tier in self.tiers for u in tier)

    async def announce(
        self, params: AnnounceParams, *, timeout: float | None = None
    ) -> AnnounceResult:
        """Announce with ``params`` (its ``key`` replaced by ours). Raises TrackerError: the
        tracker's refusal, or the last error when no URL answered."""
        params = AnnounceParams(**{**_fields(params), "key": self.key})
        errors = []
        for tier in self.tiers:
            for url in list(tier):
                scheme = _scheme(url)
                try:
                    if scheme in ("http", "https"):
                        result = await announce_http(url, params, timeout=timeout or self.timeout)
                    elif scheme == "udp":
                        tracker = self._udp.setdefault(url, UdpTracker(url))
                        result = await tracker.announce(params, timeout=timeout or self.timeout)
                    else:
                        continue
                except TrackerError as exc:
                    if exc.failure:
                        raise
                    errors.append(str(exc))
                    continue
                tier.remove(url)
                tier.insert(0, url)
                self.last_url = url
                return result
        raise TrackerError("; ".join(errors) or "no usable tracker URL")


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


def _fields(params: AnnounceParams) -> dict:
    return {name: getattr(params, name) for name in AnnounceParams.__slots__}
