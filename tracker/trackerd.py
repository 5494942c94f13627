"""trackerd: a lean asyncio (uvloop) HTTP tracker serving ``/announce`` and ``/scrape``.

No Django import: the server takes what answers requests as arguments. It runs the same HTTP
wire as the Django view (``tracker.announce.wire_http``) over the authority, peer store and
policy it is given; ``tracker.announce_runtime.serve_trackerd`` builds those from the Django
settings (the process's peer store, shared through Redis in batches, and
``tracker.authority.LocalAuthority``: standings in process memory, dropped the moment the site
invalidates them) and calls :func:`serve`. A reverse proxy routes ``/announce`` and
``/scrape`` to it; several processes can share one port with ``SO_REUSEPORT``.

HTTP/1.1 subset (RFC 9112): GET (and HEAD) only, keep-alive by default, ``Connection: close``
honoured, pipelined requests answered in order, no request bodies, headers at most 8 KiB.

UDP (BEP 15, passkeys in BEP 41 URL data): the same process answers datagrams on its UDP
sockets (dual-stack: one IPv4 and one IPv6-only socket, ``SO_REUSEPORT`` with several workers)
through ``tracker.announce.udp_tracker.UdpTracker``, with the same authority, peer store and
rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import socket
import threading
import time
from collections.abc import Callable

from core.forwarded import resolve_client_ip
from tracker.announce.records import Pending
from tracker.announce.rules import Authority, Policy
from tracker.announce.store import MemoryPeerStore
from tracker.announce.udp_tracker import UdpTracker
from tracker.announce.wire_http import encode_failure, handle_announce, handle_scrape

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 8192
#: A gate, searched in the lowered head: a request naming none of these headers anywhere has
#: none of them, so its headers are not parsed (a hit only means :func:`_headers` runs). One
#: case-sensitive search of ``head.lower()`` costs about half of the case-insensitive
#: line-anchored pattern it replaces (which cannot skip ahead on a literal prefix).
_HEADERS_OF_INTEREST = re.compile(rb"con(?:nection|tent-length)|transfer-encoding|x-forwarded-for")
IDLE_SECONDS = 60.0
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked for (the kernel may cap it at rmem_max)
#: Times a request waits on the authority's database lookups (``records.Pending``) before it
#: is answered "busy" (each wait is one lookup: passkey, info_hash, client whitelist).
MAX_LOOKUP_WAITS = 4
BUSY_FAILURE = b"Tracker busy: try again shortly"
MAX_PIPELINED_BYTES = 256 * 1024  # request bytes held behind a request waiting on a lookup
#: The cyclic collector's thresholds while serving (``gc.set_threshold``). Every announce makes
#: a dozen short-lived container objects (the request, the outcome, peer states, the journal's
#: change) that reference counting frees, and none that form cycles; with Python's default
#: first threshold (700) a young-generation collection ran every ~50 announces and the
#: collector took ~5 % of trackerd's CPU under load (perf, issue 17). Collections still run,
#: 70 times less often.
GC_THRESHOLDS = (50_000, 20, 100)


def quiet_collector() -> None:
    """Collect once, freeze what survives (modules, settings, loaded standings: the
    collector never walks them again) and raise the collection thresholds to
    :data:`GC_THRESHOLDS`. Peers live in packed buffers, not objects, so nothing the server
    keeps per peer is left for the collector either."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _response(status: bytes, body: bytes, *, close: bool, content_type: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        status,
        content_type,
        len(body),
    )
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


class TrackerProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: TrackerServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.buffer = b""
        self.last_seen = time.monotonic()
        #: A request waiting on a database lookup: later requests wait behind it (in order).
        self.waiting: asyncio.Future | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: remember its address (the socket's, for the rules)."""
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if peer else ""
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed (either side)."""
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        """Answer every complete request head in ``data`` (pipelined ones in order); a head
        over ``MAX_HEADER_BYTES`` gets 431 and the connection is closed."""
        self.last_seen = time.monotonic()
        if (
            self.waiting is None
            and not self.buffer
            and data.endswith(b"\r\n\r\n")
            and data.count(b"\r\n\r\n") == 1
        ):
            self._answer(data[:-4])  # one whole request
            return
        self.buffer += data
        if self.waiting is None:
            self._drain()
        elif len(self.buffer) > MAX_PIPELINED_BYTES and self.transport is not None:
            self.transport.close()  # piling requests up behind a lookup

    def _answer(self, head: bytes) -> None:
        """Answer one request head, or, when the authority must read the database first
        (:class:`~tracker.announce.records.Pending`), wait for that off the event loop."""
        try:
            reply, close = self.server.respond(head, self.remote)
        except Pending as pending:
            self.waiting = asyncio.ensure_future(self._answer_later(head, pending))
            return
        self._send(reply, close=close)

    async def _answer_later(self, head: bytes, pending: Pending) -> None:
        reply, close = b"", True
        for _ in range(MAX_LOOKUP_WAITS):
            with contextlib.suppress(Exception):  # a failed lookup is tried again
                await asyncio.wrap_future(pending.future)
            try:
                reply, close = self.server.respond(head, self.remote)
                break
            except Pending as again:
                pending = again
        else:
            body = encode_failure(BUSY_FAILURE.decode())
            reply = _response(b"200 OK", body, close=False, content_type=b"text/plain")
            close = False
        self.waiting = None
        if self.transport is None or self.transport.is_closing():
            return
        self._send(reply, close=close)
        self._drain()

    def _drain(self) -> None:
        """Answer the complete request heads in the buffer, in order, until one waits."""
        while (
            self.transport is not None and not self.transport.is_closing() and self.waiting is None
        ):
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._send(
                        _response(
                            b"431 Request Header Fields Too Large",
                            b"",
                            close=True,
                            content_type=b"text/plain",
                        ),
                        close=True,
                    )
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self._answer(head)

    def _send(self, data: bytes, *, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.transport.close()


class TrackerServer:
    """Routes HTTP requests to the shared HTTP wire. ``respond`` is synchronous and pure apart
    from the store and authority it uses.

    Args:
        authority: cached standings (``rules.Authority``); store: the process's peer store;
            policy: the announce rules; snatches: ``{torrent_id} -> {torrent_id: snatches}``
            for scrapes; trusted: proxies whose ``X-Forwarded-For`` is believed.
    """

    def __init__(
        self,
        *,
        authority: Authority,
        store: MemoryPeerStore,
        policy: Policy,
        snatches: Callable[[set[int]], dict[int, int]],
        trusted: frozenset[str] = frozenset(),
    ) -> None:
        self.authority = authority
        self.store = store
        self.policy = policy
        self.snatches = snatches
        self.trusted = trusted
        self.connections: set[TrackerProtocol] = set()

    def respond(self, head: bytes, remote: str) -> tuple[bytes, bool]:
        """Answer one request head; returns ``(response bytes, close the connection)``."""
        if len(head) > MAX_HEADER_BYTES:
            return _response(
                b"431 Request Header Fields Too Large", b"", close=True, content_type=b"text/plain"
            ), True
        line, _, rest = head.partition(b"\r\n")
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return _response(b"400 Bad Request", b"", close=True, content_type=b"text/plain"), True
        method, target, version = parts
        # Most requests carry none of the headers that matter: parse them only when present.
        headers = _headers(rest.split(b"\r\n")) if _HEADERS_OF_INTEREST.search(rest.lower()) else {}
        connection = headers.get(b"connection", b"").lower()
        close = connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive")
        if (
            headers.get(b"content-length", b"0") not in (b"0", b"")
            or b"transfer-encoding" in headers
        ):
            return _response(b"400 Bad Request", b"", close=True, content_type=b"text/plain"), True
        if method not in (b"GET", b"HEAD"):
            return _response(
                b"405 Method Not Allowed", b"", close=close, content_type=b"text/plain"
            ), close
        body, status = self._route(target, headers, remote)
        reply = _response(status, body, close=close, content_type=b"text/plain")
        if method == b"HEAD":
            reply = reply[: len(reply) - len(body)]
        return reply, close

    def _route(
        self, target: bytes, headers: dict[bytes, bytes], remote: str
    ) -> tuple[bytes, bytes]:
        path, _, query = target.partition(b"?")
        kind, _, passkey = path.lstrip(b"/").partition(b"/")
        passkey_text = passkey.decode("latin-1")
        if kind == b"announce":
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
            ip = resolve_client_ip(remote, forwarded, self.trusted)
            body = handle_announce(
                query,
                client_ip=ip,
                path_passkey=passkey_text,
                auth=self.authority,
                store=self.store,
                policy=self.policy,
            )
            return body, b"200 OK"
        if kind == b"scrape":
            body = handle_scrape(
                query,
                path_passkey=passkey_text,
                auth=self.authority,
                store=self.store,
                snatches=self.snatches,
            )
            return body, b"200 OK"
        if path == b"/health":
            return b'{"status": "ok"}', b"200 OK"
        return b"", b"404 Not Found"

    async def sweep_idle(self) -> None:
        """Close connections idle for more than ``IDLE_SECONDS`` (checked every 10 s)."""
        while True:
            await asyncio.sleep(10)
            cutoff = time.monotonic() - IDLE_SECONDS
            for conn in [c for c in self.connections if c.last_seen < cutoff]:
                if conn.transport is not None:
                    conn.transport.close()


def _headers(lines: list[bytes]) -> dict[bytes, bytes]:
    headers = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


class UdpTrackerProtocol(asyncio.DatagramProtocol):
    """One UDP socket: every datagram is answered (or dropped) by the shared
    :class:`~tracker.announce.udp_tracker.UdpTracker`."""

    def __init__(self, tracker: UdpTracker) -> None:
        self.tracker = tracker
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: set[asyncio.Future] = set()  # datagrams waiting on a database lookup

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is ready."""
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        """Answer one datagram from ``addr`` (``(host, port, ...)``), or stay silent; when the
        authority must read the database first, answer once that is done (off the loop)."""
        try:
            reply = self.tracker.handle(data, addr)
        except Pending as pending:
            task = asyncio.ensure_future(self._answer_later(data, addr, pending))
            self.waiting.add(task)  # keep a reference until it is done
            task.add_done_callback(self.waiting.discard)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def _answer_later(self, data: bytes, addr: tuple, pending: Pending) -> None:
        for _ in range(MAX_LOOKUP_WAITS):
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(pending.future)
            try:
                reply = self.tracker.handle(data, addr)
                break
            except Pending as again:
                pending = again
        else:
            return  # still not loaded: the client retries (BEP 15)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors of earlier replies (a client gone): nothing to do."""


def udp_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, non-blocking UDP socket on ``host``/``port``. An IPv6 socket is IPv6-only
    (``IPV6_V6ONLY``), so that IPv4 clients reach the IPv4 socket and get IPv4 peers;
    ``reuse_port`` lets several worker processes share the port (``SO_REUSEPORT``).

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_udp(
    tracker: UdpTracker, hosts: tuple[str, ...], port: int, *, reuse_port: bool
) -> list[asyncio.DatagramTransport]:
    """Listen for BEP 15 datagrams on ``port`` of every address in ``hosts`` (default
    ``0.0.0.0`` and ``::``). An IPv6 address that cannot be bound (a host without IPv6) is
    skipped with a warning; any other failure raises."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.DatagramTransport] = []
    try:
        for host in hosts:
            try:
                sock = udp_socket(host, port, reuse_port=reuse_port)
            except OSError as exc:
                if ":" in host and len(hosts) > 1:
                    log.warning(
                        "UDP tracker: cannot listen on [%s]:%d (%s); skipped", host, port, exc
                    )
                    continue
                raise
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpTrackerProtocol(tracker), sock=sock
            )
            transports.append(transport)
    except BaseException:
        for transport in transports:
            transport.close()
        raise
    return transports


DEFAULT_UDP_HOSTS = ("0.0.0.0", "::")


async def serve(
    server: TrackerServer,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    udp: UdpTracker | None = None,
    udp_port: int = 0,
    udp_hosts: tuple[str, ...] = DEFAULT_UDP_HOSTS,
    ready: threading.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve HTTP with ``server`` on ``host``/``port`` and, when ``udp`` is given and
    ``udp_port`` is not 0, BEP 15 with ``udp`` on ``udp_port`` of every address in
    ``udp_hosts``, until ``stop`` is set (or forever). ``ready`` is set once listening.

    Raises:
        OSError: a port cannot be bound (nothing is left listening).
    """
    quiet_collector()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: TrackerProtocol(server), host, port, reuse_port=reuse_port, backlog=1024
    )
    transports = []
    try:
        if udp is not None and udp_port:
            transports = await open_udp(udp, udp_hosts, udp_port, reuse_port=reuse_port)
    except BaseException:
        listener.close()
        raise
    sweeper = asyncio.ensure_future(server.sweep_idle())
    if ready is not None:
        ready.set()
    try:
        if stop is None:
            await asyncio.Future()
        else:
            await stop.wait()
    finally:
        sweeper.cancel()
        for transport in transports:
            transport.close()
        listener.close()
        await listener.wait_closed()
