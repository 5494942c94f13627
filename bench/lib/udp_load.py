"""A UDP load process (BEP 15): ``python -m bench.lib.udp_load`` reads a JSON spec on stdin,
builds its announce packets, prints ``READY``, waits for ``GO``, keeps a window of announces in
flight over several sockets for the spec's duration, and prints what it saw as JSON.

There is no UDP tracker load tool in Debian; ``bench/udp.py`` starts several of these.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import select
import socket
import struct
import sys
import time
from collections import Counter

from bench.lib.env import BLACKLISTED_PORTS, PEER_ID_PREFIX, SEEDER_SHARE
from tracker.announce.wire_udp import ACTION_CONNECT, PROTOCOL_ID, encode_options

SOCKETS_PER_GENERATOR = 8
CONNECTION_ID_SECONDS = 55.0  # load processes reconnect before BEP 15's one-minute client limit
LOST_AFTER = 0.25  # seconds of silence after which the announces in flight count as lost
LATENCY_EVERY = 8  # every n-th reply is timed
_ANNOUNCE_BODY = struct.Struct(">II20s20sqqqiIIiH")  # after the 8-byte connection id


def build_bodies(spec: dict) -> list[bytes]:
    """Announce packets without their connection id, one per fresh peer ``i`` in
    ``[start, start + count)``: torrent ``i % T``, member ``(i // T + 7 t) % M`` (the
    (member, torrent) pairs never repeat within T x M peers), transaction id ``i``."""
    hashes = [bytes.fromhex(h) for h in spec["hashes"]]
    passkeys = [p.encode() for p in spec["passkeys"]]
    torrents, members = len(hashes), len(passkeys)
    rng = random.Random(spec["seed"])
    bodies = []
    for i in range(spec["start"], spec["start"] + spec["count"]):
        t = i % torrents
        url = b"/announce/" + passkeys[(i // torrents + 7 * t) % members]
        port = rng.randrange(1025, 65536)
        while port in BLACKLISTED_PORTS:
            port = rng.randrange(1025, 65536)
        left = 0 if rng.random() < SEEDER_SHARE else rng.randrange(1, 1 << 33)
        peer_id = PEER_ID_PREFIX + rng.randbytes(12)
        body = _ANNOUNCE_BODY.pack(
            1, i & 0xFFFFFFFF, hashes[t], peer_id, 0, left, 0, 2, 0, rng.getrandbits(32), 50, port
        )
        bodies.append(body + encode_options(url))
    return bodies


def connection_id(sock: socket.socket, attempts: int = 5) -> bytes:
    """BEP 15 connect on a connected, blocking socket (bounded retries)."""
    for attempt in range(attempts):
        tid = random.getrandbits(31)
        sock.send(struct.pack(">QII", PROTOCOL_ID, ACTION_CONNECT, tid))
        with contextlib.suppress(TimeoutError):
            while True:
                reply = sock.recv(64)
                if len(reply) >= 16 and struct.unpack(">II", reply[:8]) == (0, tid):
                    return reply[8:16]
        time.sleep(0.1 * (attempt + 1))
    raise RuntimeError("no connect reply")


def generator_child() -> None:
    """Load-process mode: read a JSON spec on stdin, build the packets, print ``READY``, wait for
    ``GO``, keep ``window`` announces in flight for ``duration`` seconds over
    ``SOCKETS_PER_GENERATOR`` sockets, print the result as JSON."""
    spec = json.loads(sys.stdin.readline())
    bodies = build_bodies(spec)
    socks = []
    for _ in range(SOCKETS_PER_GENERATOR):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1.0)
        sock.connect((spec["host"], spec["port"]))
        socks.append(sock)
    ids = [connection_id(sock) for sock in socks]
    connected_at = time.monotonic()
    for sock in socks:
        sock.setblocking(False)
    sent_at = [0.0] * len(bodies)
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return
    window, duration, start = spec["window"], spec["duration"], spec["start"]
    count = len(bodies)
    nsocks = len(socks)
    sends = [s.send for s in socks]
    recvs = [s.recv for s in socks]
    fds = {s.fileno(): k for k, s in enumerate(socks)}
    ok = lost = wraps = sent = 0
    errors: Counter = Counter()
    other = 0
    latencies: list[float] = []
    inflight = 0
    i = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    end = began + duration
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while inflight < window:
            if i == count:
                i = 0
                wraps += 1
            k = i % nsocks
            try:
                sends[k](ids[k] + bodies[i])
            except BlockingIOError:
                break
            sent_at[i] = now
            i += 1
            inflight += 1
            sent += 1
        ready, _, _ = select.select(socks, [], [], LOST_AFTER)
        if not ready:
            lost += inflight
            inflight = 0
            continue
        now = time.perf_counter()
        for sock in ready:
            recv = recvs[fds[sock.fileno()]]
            while True:
                try:
                    data = recv(96)
                except BlockingIOError:
                    break
                if inflight > 0:  # a reply after its announce was counted lost is not
                    inflight -= 1
                action = data[3] if len(data) >= 8 else -1
                if action == 1:
                    ok += 1
                    if ok % LATENCY_EVERY == 0:
                        tid = int.from_bytes(data[4:8], "big")
                        latencies.append(now - sent_at[(tid - start) % count])
                elif action == 3:
                    errors[data[8:].decode("utf-8", "replace")] += 1
                else:
                    other += 1
        if time.monotonic() - connected_at > CONNECTION_ID_SECONDS:  # as a client would
            for sock in socks:
                sock.setblocking(True)
                sock.settimeout(1.0)
            ids = [connection_id(sock) for sock in socks]
            connected_at = time.monotonic()
            for sock in socks:
                sock.setblocking(False)
    elapsed = time.perf_counter() - began
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    drain_until = time.perf_counter() + 10 * LOST_AFTER  # replies still due are not lost
    while inflight > 0 and time.perf_counter() < drain_until:
        ready, _, _ = select.select(socks, [], [], LOST_AFTER)
        for sock in ready:
            with contextlib.suppress(BlockingIOError):
                while inflight > 0:
                    recvs[fds[sock.fileno()]](96)
                    inflight -= 1
    latencies.sort()
    print(
        json.dumps(
            {
                "ok": ok,
                "sent": sent,
                "lost": lost + inflight,
                "errors": dict(errors),
                "other": other,
                "wraps": wraps,
                "elapsed": elapsed,
                "cpu": cpu,
                "latencies": latencies[:: max(1, len(latencies) // 2000)],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    generator_child()
    sys.exit(0)
