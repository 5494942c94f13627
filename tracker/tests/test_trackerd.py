"""trackerd over real sockets on 127.0.0.1: keep-alive, pipelining, refusals, invalidation."""

import asyncio
import socket
import threading
import time
from urllib.parse import quote_from_bytes

import fastbencode
import pytest

from tracker import tracking
from tracker.models import ClientPrefix
from tracker.services import members
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from tracker.trackerd import serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trackerd(monkeypatch):
    """A trackerd on a free port, in a thread with its own event loop."""
    monkeypatch.setattr(tracking, "_runtime", tracking.build_runtime())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve("127.0.0.1", port, reuse_port=False, ready=ready, stop=stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "trackerd did not start"
    yield port
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


@pytest.fixture
def swarm():
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher = MemberFactory(), MemberFactory()
    return upload_torrent(seeder), seeder, leecher


def request(torrent, member, *, peer=b"-TR4060-", left=0, event="started", extra=""):
    params = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": peer.ljust(20, b"x"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": str(left).encode(),
        "event": event.encode(),
    }
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in params.items())
    return f"GET /announce/{member.passkey}?{query} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def read_responses(sock, count):
    """Read ``count`` HTTP responses; returns [(status line, headers, body)]."""
    data, out = b"", []
    sock.settimeout(5)
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(headers[b"content-length"])
        while len(data) < length:
            data += sock.recv(65536)
        out.append((lines[0], headers, data[:length]))
        data = data[length:]
    return out


def test_keep_alive_and_pipelined_announces_share_one_swarm(trackerd, swarm):
    torrent, seeder, leecher = swarm
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(request(torrent, seeder) + request(torrent, leecher, left=10))
        (s1, h1, b1), (s2, _, b2) = read_responses(sock, 2)
    assert s1 == s2 == b"HTTP/1.1 200 OK" and b"connection" not in h1
    assert fastbencode.bdecode(b1)[b"complete"] == 1
    reply = fastbencode.bdecode(b2)
    assert reply[b"peers"] == bytes([127, 0, 0, 1]) + (51413).to_bytes(2, "big")
    assert reply[b"incomplete"] == 1


def test_connection_close_is_honoured(trackerd, swarm):
    torrent, seeder, _ = swarm
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(request(torrent, seeder, extra="Connection: close\r\n"))
        ((status, headers, _),) = read_responses(sock, 1)
        assert status == b"HTTP/1.1 200 OK" and headers[b"connection"] == b"close"
        assert sock.recv(10) == b""


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"POST /announce HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
        (b"GET /elsewhere HTTP/1.1\r\n\r\n", b"HTTP/1.1 404 Not Found"),
        (b"GET /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", b"HTTP/1.1 400 Bad Request"),
        (
            b"GET /announce HTTP/1.1\r\nX-Pad: " + b"x" * 9000,
            b"HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ],
)
def test_bad_http_gets_an_error_status_not_a_crash(trackerd, raw, status):
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(raw)
        ((line, _, _),) = read_responses(sock, 1)
    assert line == status


def test_bad_announce_is_a_bencoded_failure(trackerd, swarm):
    _, seeder, _ = swarm
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(f"GET /announce/{seeder.passkey}?info_hash=abc HTTP/1.1\r\n\r\n".encode())
        ((_, _, body),) = read_responses(sock, 1)
    assert fastbencode.bdecode(body) == {
        b"failure reason": b"Invalid info_hash: must be 20 bytes, got 3"
    }


def test_reset_passkey_stops_working_at_trackerd_at_once(trackerd, swarm):
    torrent, seeder, _ = swarm
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(request(torrent, seeder))
        assert b"peers" in fastbencode.bdecode(read_responses(sock, 1)[0][2])
        members.passkey_reset(member=seeder)
        deadline, reason = time.monotonic() + 3, None
        while time.monotonic() < deadline and reason is None:
            sock.sendall(request(torrent, seeder, peer=b"-TR4060-again", event="started"))
            reply = fastbencode.bdecode(read_responses(sock, 1)[0][2])
            reason = reply.get(b"failure reason")
            time.sleep(0.02)
    assert reason == b"Unknown passkey"


def test_standings_are_preloaded_in_bulk_and_invalidations_during_a_preload_win(swarm):
    from tracker import authcache
    from tracker.trackerd import LocalAuthority

    torrent, seeder, _ = swarm
    authority = LocalAuthority(ttl=60)
    try:
        real = authcache.all_standings

        def slow_standings():
            # A passkey reset lands while the bulk load is under way.
            authority.forget(authcache.passkey_key(seeder.passkey))
            yield from real()

        authcache.all_standings = slow_standings
        try:
            assert authority.preload() >= 3  # two members and one torrent at least
        finally:
            authcache.all_standings = real
        assert authcache.passkey_key(seeder.passkey) not in authority._entries
        key = authcache.torrent_key(torrent.info_hash)
        assert authority._entries[key][1].torrent_id == torrent.pk
        # A preloaded answer is served from memory: no loader round trip, no query.
        authority._loader.shutdown()
        assert authority.torrent(torrent.info_hash).torrent_id == torrent.pk
    finally:
        authority._loader.shutdown()
