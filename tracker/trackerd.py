"""trackerd: a lean asyncio (uvloop) HTTP tracker serving ``/announce`` and ``/scrape``.

It runs the same pipeline as the Django view (``tracker.announce.handler``) with the same peer
store runtime (``tracker.tracking``: peers in this process's memory, shared through Redis in
batches). Authorization answers are kept in this process's memory (:class:`LocalAuthority`)
and dropped the moment the site invalidates them (Redis pub/sub), so a reset passkey stops
working at once here too. A reverse proxy routes ``/announce`` and ``/scrape`` to it; several
processes can share one port with ``SO_REUSEPORT``.

HTTP/1.1 subset (RFC 9112): GET (and HEAD) only, keep-alive by default, ``Connection: close``
honoured, pipelined requests answered in order, no request bodies, headers at most 8 KiB.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
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

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 8192
_HEADERS_OF_INTEREST = re.compile(
    rb"(?:^|\n)[ \t]*(?:connection|content-length|transfer-encoding|x-forwarded-for)[ \t]*:"
)
IDLE_SECONDS = 60.0
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
                snatches=tracking.snatch_counts,
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


async def serve(
    host: str,
    port: int,
    *,
    reuse_port: bool,
    ready: threading.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever). ``ready`` is set once listening."""
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
        listener.close()
        await listener.wait_closed()
        authority.close()
