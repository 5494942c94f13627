"""trackerd over real sockets on 127.0.0.1 (and ::1 for UDP): keep-alive, pipelining,
refusals, invalidation, scrape; BEP 15 over UDP with BEP 41 passkeys, IPv4 and IPv6."""

import socket
import struct
import time
from urllib.parse import quote_from_bytes

import fastbencode
import pytest

from tracker import announce_runtime
from tracker.models import ClientPrefix
from tracker.services import members
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from tracker.tests.trackerd_helpers import running_trackerd

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trackerd(monkeypatch):
    """A trackerd (HTTP only) on a free port, in a thread with its own event loop."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    with running_trackerd() as daemon:
        yield daemon.http_port


@pytest.fixture
def udp_trackerd(monkeypatch):
    """A trackerd serving UDP on 127.0.0.1 and ::1 (one free port) besides HTTP."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    with running_trackerd(udp=True) as daemon:
        yield daemon


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


@pytest.mark.parametrize(
    ("trusted", "listed"), [([], b"\x7f\x00\x00\x01"), (["127.0.0.1"], b"\x0a\x09\x09\x09")]
)
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    settings, monkeypatch, swarm, trusted, listed
):
    settings.PBTS_TRUSTED_PROXIES = trusted  # before trackerd starts: it reads them then
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    torrent, seeder, leecher = swarm
    forwarded = "X-Forwarded-For: 10.9.9.9\r\n"
    with (
        running_trackerd() as daemon,
        socket.create_connection(("127.0.0.1", daemon.http_port)) as sock,
    ):
        sock.sendall(request(torrent, seeder, extra=forwarded) + request(torrent, leecher, left=10))
        _, (_, _, body) = read_responses(sock, 2)
    assert fastbencode.bdecode(body)[b"peers"] == listed + (51413).to_bytes(2, "big")


@pytest.mark.parametrize("header", ["Connection: close", "cONNECTION:Close"])
def test_connection_close_is_honoured(trackerd, swarm, header):
    torrent, seeder, _ = swarm
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(request(torrent, seeder, extra=header + "\r\n"))
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
        # header names are case-insensitive (RFC 9110 section 5.1), spaces before ':' aside
        (b"GET /announce HTTP/1.1\r\nCONTENT-length : 5\r\n\r\nhello", b"HTTP/1.1 400 Bad Request"),
        (
            b"GET /announce HTTP/1.1\r\nTransfer-ENCODING: chunked\r\n\r\n",
            b"HTTP/1.1 400 Bad Request",
        ),
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
    from tracker.authority import LocalAuthority

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


def test_http_scrape_through_trackerd_reads_snatches_off_the_event_loop(trackerd, swarm):
    torrent, seeder, _ = swarm
    torrent.snatches = 3
    torrent.save(update_fields=["snatches"])
    with socket.create_connection(("127.0.0.1", trackerd)) as sock:
        sock.sendall(request(torrent, seeder))
        read_responses(sock, 1)
        info_hash = quote_from_bytes(bytes.fromhex(torrent.info_hash), safe="")
        sock.sendall(
            f"GET /scrape/{seeder.passkey}?info_hash={info_hash} HTTP/1.1\r\n\r\n".encode()
        )
        ((status, _, body),) = read_responses(sock, 1)
    assert status == b"HTTP/1.1 200 OK"
    files = fastbencode.bdecode(body)[b"files"]
    assert files == {
        bytes.fromhex(torrent.info_hash): {b"complete": 1, b"downloaded": 3, b"incomplete": 0}
    }


# --- UDP (BEP 15, BEP 41) over real sockets --------------------------------------------

UDP_TIMEOUT = 3.0


class UdpClient:
    """A minimal BEP 15 client on one socket (bounded waits): connect, announce, scrape."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(UDP_TIMEOUT)
        self.sock.connect((host, port))
        self.tid = 100

    def close(self) -> None:
        self.sock.close()

    def exchange(self, data: bytes) -> bytes | None:
        """Send one datagram; the reply, or ``None`` after ``UDP_TIMEOUT`` seconds (or when
        nothing listens: ICMP port unreachable)."""
        try:
            self.sock.send(data)
            return self.sock.recv(65536)
        except (TimeoutError, ConnectionRefusedError):
            return None

    def connect(self) -> int:
        self.tid += 1
        reply = self.exchange(struct.pack(">QII", 0x41727101980, 0, self.tid))
        assert reply is not None and struct.unpack(">II", reply[:8]) == (0, self.tid), reply
        return struct.unpack(">Q", reply[8:])[0]

    def announce(self, cid, torrent, *, passkey, peer, left=0, event=2, port=51413, url=None):
        self.tid += 1
        packet = struct.pack(
            ">QII20s20sqqqiIIiH", cid, 1, self.tid, bytes.fromhex(torrent.info_hash),
            peer.ljust(20, b"x"), 0, left, 0, event, 0, 0, -1, port,
        )  # fmt: skip
        data = url if url is not None else f"/announce/{passkey}".encode()
        if data:
            packet += bytes((2, len(data))) + data
        return self.exchange(packet)


@pytest.fixture
def udp_client():
    clients = []

    def make(host: str, port: int) -> UdpClient:
        clients.append(UdpClient(host, port))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _error_text(reply: bytes | None) -> str:
    assert reply is not None and reply[:4] == b"\0\0\0\3", reply
    return reply[8:].decode()


@pytest.mark.parametrize(("host", "stride"), [("127.0.0.1", 6), ("::1", 18)])
def test_udp_seeder_and_leecher_meet_with_the_peers_of_their_family(
    udp_trackerd, swarm, udp_client, host, stride
):
    torrent, seeder, leecher = swarm
    seed = udp_client(host, udp_trackerd.udp_port)
    leech = udp_client(host, udp_trackerd.udp_port)
    reply = seed.announce(seed.connect(), torrent, passkey=seeder.passkey, peer=b"-TR4060-s")
    assert struct.unpack(">IIIII", reply[:20])[3:] == (0, 1) and reply[20:] == b""
    reply = leech.announce(
        leech.connect(), torrent, passkey=leecher.passkey, peer=b"-TR4060-l", left=10
    )
    action, _, interval, leechers, seeders = struct.unpack(">IIIII", reply[:20])
    assert (action, leechers, seeders) == (1, 1, 1) and interval >= 1800
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    assert reply[20:] == packed + (51413).to_bytes(2, "big")
    assert len(reply[20:]) == stride
    assert announce_runtime.peer_store().counts([torrent.pk]) == {torrent.pk: (1, 1)}


def test_udp_connection_id_is_shared_by_the_sockets_of_one_address(udp_trackerd, swarm, udp_client):
    """Issue 14: a connection id from one socket is accepted from another socket (another
    port) of the same address, as libtorrent reuses it; from another address it is not."""
    torrent, seeder, leecher = swarm
    first = udp_client("127.0.0.1", udp_trackerd.udp_port)
    second = udp_client("127.0.0.1", udp_trackerd.udp_port)
    assert first.sock.getsockname()[1] != second.sock.getsockname()[1]
    cid = first.connect()
    reply = second.announce(cid, torrent, passkey=seeder.passkey, peer=b"-TR4060-s")
    assert reply is not None and reply[:4] == b"\0\0\0\1", reply
    other = udp_client("::1", udp_trackerd.udp_port)
    reply = other.announce(cid, torrent, passkey=leecher.passkey, peer=b"-TR4060-l", left=5)
    assert _error_text(reply) == "Invalid connection ID"
    assert announce_runtime.peer_store().counts([torrent.pk]) == {torrent.pk: (1, 0)}


def test_udp_missing_or_unknown_passkey_gets_a_clear_error(udp_trackerd, swarm, udp_client):
    torrent, seeder, _ = swarm
    client = udp_client("127.0.0.1", udp_trackerd.udp_port)
    cid = client.connect()
    reply = client.announce(cid, torrent, passkey="", peer=b"-TR4060-", url=b"")
    assert _error_text(reply) == "Missing passkey: use the announce URL with your passkey"
    reply = client.announce(cid, torrent, passkey="0" * 32, peer=b"-TR4060-")
    assert _error_text(reply) == "Unknown passkey"
    reply = client.announce(cid, torrent, passkey=seeder.passkey, peer=b"-XX0000-")
    assert _error_text(reply) == "Client not allowed"
    assert announce_runtime.peer_store().counts([torrent.pk]) == {torrent.pk: (0, 0)}


def test_udp_reset_passkey_stops_working_at_once(udp_trackerd, swarm, udp_client):
    torrent, seeder, _ = swarm
    client = udp_client("::1", udp_trackerd.udp_port)
    cid = client.connect()
    old_passkey = seeder.passkey
    reply = client.announce(cid, torrent, passkey=old_passkey, peer=b"-TR4060-")
    assert reply[:4] == b"\0\0\0\1"
    members.passkey_reset(member=seeder)
    deadline, reason = time.monotonic() + 3, ""
    while time.monotonic() < deadline and reason != "Unknown passkey":
        reply = client.announce(cid, torrent, passkey=old_passkey, peer=b"-TR4060-2")
        reason = _error_text(reply) if reply[:4] == b"\0\0\0\3" else ""
        time.sleep(0.02)
    assert reason == "Unknown passkey"


def test_udp_scrape_counts_registered_torrents_and_zeros_others(udp_trackerd, swarm, udp_client):
    torrent, seeder, _ = swarm
    torrent.snatches = 2
    torrent.save(update_fields=["snatches"])
    client = udp_client("127.0.0.1", udp_trackerd.udp_port)
    cid = client.connect()
    client.announce(cid, torrent, passkey=seeder.passkey, peer=b"-TR4060-")
    hashes = bytes.fromhex(torrent.info_hash) + b"\x07" * 20
    reply = client.exchange(struct.pack(">QII", cid, 2, 9) + hashes)
    assert struct.unpack(">II", reply[:8]) == (2, 9)
    assert list(struct.iter_unpack(">III", reply[8:])) == [(1, 2, 0), (0, 0, 0)]
    too_many = client.exchange(struct.pack(">QII", cid, 2, 9) + b"\x07" * 20 * 75)
    assert _error_text(too_many) == "Too many info_hash values (at most 74)"


def test_udp_bad_datagrams_are_survived_and_change_nothing(udp_trackerd, swarm, udp_client):
    torrent, seeder, _ = swarm
    client = udp_client("127.0.0.1", udp_trackerd.udp_port)
    cid = client.connect()
    packet = lambda *a: client.exchange(struct.pack(">QII", *a))  # noqa: E731
    client.sock.settimeout(0.3)  # silence is expected for most of these
    assert packet(0, 0, 1) is None  # connect without the protocol id
    assert packet(cid, 7, 1) is not None  # unknown action with a valid id: error
    assert packet(cid ^ 5, 1, 1) is None  # a 16-byte announce with a bad id: no amplification
    assert client.exchange(b"\x00" * 7) is None
    assert client.exchange(b"\xff" * 60_000) is None
    wrong = client.announce(cid ^ 5, torrent, passkey=seeder.passkey, peer=b"-TR4060-")
    assert _error_text(wrong) == "Invalid connection ID"
    client.sock.settimeout(UDP_TIMEOUT)
    assert announce_runtime.peer_store().counts([torrent.pk]) == {torrent.pk: (0, 0)}
    assert not announce_runtime.peer_store().take_journal()
    ok = client.announce(client.connect(), torrent, passkey=seeder.passkey, peer=b"-TR4060-")
    assert ok[:4] == b"\0\0\0\1"  # still serving


def test_udp_sockets_share_a_port_across_workers_with_reuse_port():
    from tracker.tests.trackerd_helpers import free_udp_port
    from tracker.trackerd import udp_socket

    port = free_udp_port()
    sockets = [udp_socket(h, port, reuse_port=True) for h in ("127.0.0.1", "127.0.0.1", "::1")]
    try:
        v6 = sockets[2]
        assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert {s.getsockname()[1] for s in sockets} == {port}
    finally:
        for sock in sockets:
            sock.close()
    with udp_socket("127.0.0.1", port, reuse_port=False), pytest.raises(OSError):
        udp_socket("127.0.0.1", port, reuse_port=False)


def test_trackerd_command_checks_its_udp_options():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--udp-port"):
        call_command("trackerd", "--udp-port", "70000")
    with pytest.raises(CommandError, match="--udp-host"):
        call_command("trackerd", "--udp-port", "6969", "--udp-host", " , ")


def test_trackerd_command_serves_udp_on_both_families_with_two_workers(settings, tmp_path):
    """``manage.py trackerd --workers 2``: both workers bind the UDP port (SO_REUSEPORT) on
    127.0.0.1 and ::1; clients from many source ports are all answered."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from core.processes import stop_process
    from tracker.tests.trackerd_helpers import free_tcp_port, free_udp_port

    root = Path(__file__).resolve().parents[2]
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        DJANGO_SETTINGS_MODULE="pbts_site.settings_test",
    )
    http_port, udp_port = free_tcp_port(), free_udp_port()
    cmd = [sys.executable, "manage.py", "trackerd", "--port", str(http_port), "--workers", "2"]
    cmd += ["--udp-port", str(udp_port), "--udp-host", "127.0.0.1,::1"]
    log = (tmp_path / "trackerd.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        answered = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(answered) < 2:
            for host in ("127.0.0.1", "::1"):
                client = UdpClient(host, udp_port)
                client.sock.settimeout(0.2)
                try:
                    reply = client.exchange(struct.pack(">QII", 0x41727101980, 0, 1))
                finally:
                    client.close()
                if reply is not None and reply[:8] == struct.pack(">II", 0, 1):
                    answered.add(host)
            time.sleep(0.1)
        assert answered == {"127.0.0.1", "::1"}, (tmp_path / "trackerd.log").read_text()
        for host in ("127.0.0.1", "::1"):  # many source ports: spread over both workers
            for _ in range(8):
                client = UdpClient(host, udp_port)
                try:
                    cid = client.connect()
                    reply = client.exchange(struct.pack(">QII", cid, 2, 3) + b"\x01" * 20)
                finally:
                    client.close()
                assert reply == struct.pack(">IIIII", 2, 3, 0, 0, 0)
    finally:
        stop_process(proc, grace=20)
        log.close()
