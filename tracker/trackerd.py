"""trackerd: a lean asyncio (uvloop) HTTP tracker serving ``/announce`` and ``/scrape``.

It runs the same pipeline as the Django view (``tracker.announce.handler``) with the same peer
store runtime (``tracker.tracking``: peers in this process's memory, shared through Redis in
batches). Authorization answers are kept in this process's memory (:class:`LocalAuthority`)
and dropped the moment the site invalidates them (Redis pub/sub), so a reset passkey stops
working at once here too. A reverse proxy routes ``/announce`` and ``/scrape`` to it; several
processes can share one port with ``SO_REUSEPORT``.

HTTP/1.1 subset (RFC 9112): GET (and HEAD) only, keep-alive by default, ``Connection: close``
honoured, pipelined requests answered in order, no request bodies, headers at most 8 KiB.

UDP (BEP 15, passkeys in BEP 41 URL data): the same process answers datagrams on its UDP
sockets (dual-stack: one IPv4 and one IPv6-only socket, ``SO_REUSEPORT`` with several workers)
through ``tracker.announce.udp.UdpTracker``, with the same authority, peer store and rules.
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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings
from django.db import connections

from tracker import authcache, tracking
from tracker.announce.handler import (
    MemberStanding,
    TorrentStanding,
    handle_announce,
    handle_scrape,
    resolve_client_ip,
)
from tracker.announce.udp import ConnectionIds, ConnectLimiter, UdpTracker

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 8192
_HEADERS_OF_INTEREST = re.compile(
    rb"(?:^|\n)[ \t]*(?:connection|content-length|transfer-encoding|x-forwarded-for)[ \t]*:"
)
IDLE_SECONDS = 60.0
SNATCH_SECONDS = 30.0  # how long a torrent's snatch count (scrape ``downloaded``) is reused
MAX_SNATCH_ENTRIES = 100_000
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked for (the kernel may cap it at rmem_max)
_MISSING = object()


class LocalAuthority:
    """In-process copy of the cached standings with a TTL (seconds); entries are dropped as
    soon as their key is published on ``authcache.invalidation_channel()``.

    :meth:`preload` fills it in bulk (every active member and approved torrent) and a refresh
    thread repeats that every half TTL, so a running trackerd answers from memory; the rare
    miss (a new member or torrent) is loaded on one helper thread while the event loop waits
    (Django's ORM refuses to run inside the event loop, and such misses are short).
    """

    def __init__(self, *, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}
        self._inner = tracking.CachedAuthority()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbts-auth")
        self._forgotten: set[str] | None = None
        self._snatches: dict[int, tuple[float, int]] = {}

    def _get(self, key: str, load) -> Any:
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        value = self._loader.submit(load).result(timeout=10)
        self._entries[key] = (now + self._ttl, value)
        return value

    def preload(self) -> int:
        """Load every standing in bulk (on the loader thread); returns how many. Keys
        invalidated while it runs are dropped again afterwards, so nothing stale survives."""
        self._forgotten = set()
        try:
            fresh = self._loader.submit(self._load_all).result(timeout=600)
            self._entries.update(fresh)
            for key in self._forgotten:
                self._entries.pop(key, None)
        finally:
            self._forgotten = None
        return len(fresh)

    def _load_all(self) -> dict[str, tuple[float, Any]]:
        expires = time.monotonic() + self._ttl
        entries = {key: (expires, standing) for key, standing in authcache.all_standings()}
        connections.close_all()
        return entries

    def refresh_forever(self) -> threading.Thread:
        """Start a daemon thread that preloads again every half TTL."""

        def run() -> None:
            while True:
                time.sleep(max(self._ttl / 2, 1.0))
                try:
                    self.preload()
                except Exception:
                    log.exception("auth refresh failed; entries are loaded on demand meanwhile")

        thread = threading.Thread(target=run, name="pbts-auth-refresh", daemon=True)
        thread.start()
        return thread

    def member(self, passkey: str) -> MemberStanding | None:
        return self._get(authcache.passkey_key(passkey), lambda: self._inner.member(passkey))

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        key = authcache.torrent_key(info_hash_hex)
        return self._get(key, lambda: self._inner.torrent(info_hash_hex))

    def client_allowed(self, peer_id: bytes) -> bool:
        prefixes = self._get(authcache.CLIENTS_KEY, authcache.allowed_client_prefixes)
        return peer_id.startswith(prefixes)

    def snatches(self, torrent_ids: set[int]) -> dict[int, int]:
        """``{torrent_id: snatches}`` (the scrape's ``downloaded``, BEP 48 / BEP 15), reused
        for ``SNATCH_SECONDS``; misses are read in one query on the loader thread, as Django's
        ORM refuses to run inside the event loop."""
        now = time.monotonic()
        out: dict[int, int] = {}
        missing = set()
        for torrent_id in torrent_ids:
            hit = self._snatches.get(torrent_id)
            if hit is not None and hit[0] > now:
                out[torrent_id] = hit[1]
            else:
                missing.add(torrent_id)
        if missing:
            loaded = self._loader.submit(tracking.snatch_counts, missing).result(timeout=10)
            if len(self._snatches) > MAX_SNATCH_ENTRIES:
                self._snatches.clear()
            expires = now + SNATCH_SECONDS
            for torrent_id in missing:
                count = loaded.get(torrent_id, 0)
                self._snatches[torrent_id] = (expires, count)
                out[torrent_id] = count
        return out

    def close(self) -> None:
        """Close the loader thread's database connection and stop the thread."""
        self._loader.submit(connections.close_all).result(timeout=10)
        self._loader.shutdown()

    def forget(self, key: str) -> None:
        """Drop one entry (a published cache key such as ``auth:passkey:<passkey>``)."""
        self._entries.pop(key, None)
        forgotten = self._forgotten
        if forgotten is not None:
            forgotten.add(key)

    def listen(self, client: redis.Redis) -> threading.Event:
        """Start a daemon thread that applies published invalidations; the returned event is
        set once it is subscribed. After a lost connection everything is dropped (anything
        may have been missed) and preloaded again."""
        subscribed = threading.Event()

        def run() -> None:
            while True:
                try:
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(authority_channel := authcache.invalidation_channel())
                    pubsub.get_message(timeout=5)  # the subscribe confirmation
                    self._entries.clear()
                    if subscribed.is_set():
                        self.preload()
                    subscribed.set()
                    log.debug("subscribed to %s", authority_channel)
                    for message in pubsub.listen():
                        self.forget(message["data"].decode())
                except redis.RedisError:
                    log.warning("auth invalidation listener lost Redis; reconnecting")
                    time.sleep(1)

        threading.Thread(target=run, name="pbts-auth-listener", daemon=True).start()
        return subscribed


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if peer else ""
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        if not self.buffer and data.endswith(b"\r\n\r\n") and data.count(b"\r\n\r\n") == 1:
            reply, close = self.server.respond(data[:-4], self.remote)  # one whole request
            self._send(reply, close=close)
            return
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
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
            reply, close = self.server.respond(head, self.remote)
            self._send(reply, close=close)

    def _send(self, data: bytes, *, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.transport.close()


class TrackerServer:
    """Routes requests to the shared pipeline. ``respond`` is synchronous and pure apart from
    the store and authority it uses."""

    def __init__(self, authority: LocalAuthority) -> None:
        self.authority = authority
        self.runtime = tracking.runtime()
        self.policy = tracking.policy()
        self.trusted = frozenset(settings.PBTS_TRUSTED_PROXIES)
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
        lower = rest.lower()
        # Most requests carry none of the headers that matter: parse them only when present.
        headers = _headers(rest.split(b"\r\n")) if _HEADERS_OF_INTEREST.search(lower) else {}
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
                store=self.runtime.store,
                policy=self.policy,
            )
            return body, b"200 OK"
        if kind == b"scrape":
            body = handle_scrape(
                query,
                path_passkey=passkey_text,
                auth=self.authority,
                store=self.runtime.store,
                snatches=self.authority.snatches,
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
    :class:`~tracker.announce.udp.UdpTracker`."""

    def __init__(self, tracker: UdpTracker) -> None:
        self.tracker = tracker
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = self.tracker.handle(data, addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors of earlier replies (a client gone): nothing to do."""


def udp_tracker(authority: LocalAuthority) -> UdpTracker:
    """The UDP front end over this process's authority, peer store and rules, with the
    connection id secrets and connect limit from settings (see ``tracking.udp_secrets``)."""
    secret, previous = tracking.udp_secrets()
    return UdpTracker(
        auth=authority,
        store=tracking.runtime().store,
        policy=tracking.policy(),
        snatches=authority.snatches,
        ids=ConnectionIds(secret, previous),
        limiter=ConnectLimiter(settings.PBTS_UDP_CONNECTS_PER_MINUTE),
        trusted=frozenset(settings.PBTS_TRUSTED_PROXIES),
    )


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
    host: str,
    port: int,
    *,
    reuse_port: bool,
    ready: threading.Event | None = None,
    stop: asyncio.Event | None = None,
    udp_port: int = 0,
    udp_hosts: tuple[str, ...] = DEFAULT_UDP_HOSTS,
) -> None:
    """Serve HTTP on ``host``/``port`` and, when ``udp_port`` is not 0, BEP 15 UDP on
    ``udp_port`` of every address in ``udp_hosts``, until ``stop`` is set (or forever).
    ``ready`` is set once listening."""
    authority = LocalAuthority(ttl=settings.PBTS_AUTH_CACHE_SECONDS)
    if settings.REDIS_URL:
        authority.listen(redis.Redis.from_url(settings.REDIS_URL)).wait(timeout=10)
    started = time.monotonic()
    loaded = authority.preload()
    log.info("preloaded %d standings in %.1f s", loaded, time.monotonic() - started)
    authority.refresh_forever()
    tracking.ensure_started()
    server = TrackerServer(authority)
    # Peers live in packed buffers, not objects; keep the start-up objects (modules, settings,
    # loaded standings) out of the collector's way too.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: TrackerProtocol(server), host, port, reuse_port=reuse_port, backlog=1024
    )
    udp = []
    try:
        if udp_port:
            udp = await open_udp(udp_tracker(authority), udp_hosts, udp_port, reuse_port=reuse_port)
    except BaseException:
        listener.close()
        authority.close()
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
        for transport in udp:
            transport.close()
        listener.close()
        await listener.wait_closed()
        authority.close()
