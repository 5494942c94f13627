"""What the UDP tests share: members, a torrent, a fake clock, and BEP 15 announce packets
(``test_wire_udp.py``, ``test_udp_tracker.py``)."""

from __future__ import annotations

import struct

from tracker.announce import udp_tracker, wire_udp
from tracker.announce.records import MemberStanding, TorrentStanding
from tracker.announce.rules import Policy, Rules

PASSKEY = "a" * 32
POOR_PASSKEY = "b" * 32
SECOND_PASSKEY = "d" * 32
SECOND_URL = b"/announce/" + SECOND_PASSKEY.encode()
HASH = bytes(range(20))
OTHER_HASH = bytes(range(1, 21))
V4 = ("10.0.0.1", 6881)
V4_OTHER = ("10.0.0.2", 6882)
V6 = ("2001:db8::1", 6881, 0, 0)
V6_OTHER = ("2001:db8::2", 6882, 0, 0)
PROXY = ("192.0.2.10", 4000)
ANNOUNCE = struct.Struct(">QII20s20sqqqiIIiH")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Auth:
    """Two members (one below the ratio), one registered torrent, ``-TR`` clients only."""

    def member(self, passkey: str) -> MemberStanding | None:
        return {
            PASSKEY: MemberStanding(1, False, True, False),
            POOR_PASSKEY: MemberStanding(2, False, True, False, 1, 10 * 1024**3),
            SECOND_PASSKEY: MemberStanding(3, False, True, False),
        }.get(passkey)

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        return TorrentStanding(7, False, False) if info_hash_hex == HASH.hex() else None

    def client_allowed(self, peer_id: bytes) -> bool:
        return peer_id.startswith(b"-TR")


POLICY = Policy(rules=Rules(interval=1800, min_interval=900), grace_bytes=0)


def connect(tracker: udp_tracker.UdpTracker, addr: tuple, tid: int = 9) -> int:
    reply = tracker.handle(struct.pack(">QII", wire_udp.PROTOCOL_ID, 0, tid), addr)
    action, got_tid, connection_id = struct.unpack(">IIQ", reply)
    assert (action, got_tid) == (0, tid)
    return connection_id


def announce_packet(
    connection_id: int,
    *,
    tid: int = 5,
    info_hash: bytes = HASH,
    peer: bytes = b"-TR4060-",
    downloaded: int = 0,
    left: int = 0,
    uploaded: int = 0,
    event: int = 2,
    ip: int = 0,
    key: int = 0xABCD,
    numwant: int = -1,
    port: int = 51413,
    url: bytes | None = b"/announce/" + PASSKEY.encode(),
    options: bytes | None = None,
) -> bytes:
    head = ANNOUNCE.pack(
        connection_id, 1, tid, info_hash, peer.ljust(20, b"x"), downloaded, left, uploaded,
        event, ip, key, numwant, port,
    )  # fmt: skip
    if options is None:
        options = wire_udp.encode_options(url) if url is not None else b""
    return head + options


def error_of(reply: bytes | None, tid: int = 5) -> str:
    assert reply is not None, "expected an error packet, got silence"
    action, got_tid = struct.unpack_from(">II", reply)
    assert (action, got_tid) == (3, tid), reply
    return reply[8:].decode()


def announce_reply(reply: bytes | None, stride: int) -> tuple[int, int, int, list[bytes]]:
    assert reply is not None
    action, _, interval, leechers, seeders = struct.unpack_from(">IIIII", reply)
    assert action == 1, reply[8:]
    body = reply[20:]
    assert len(body) % stride == 0
    return interval, leechers, seeders, [body[i : i + stride] for i in range(0, len(body), stride)]
