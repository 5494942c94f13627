"""trackerd's request path in one process: CPU per announce, with no sockets and no services.

Drives ``TrackerServer.respond`` (what trackerd runs for every HTTP request head: the head,
the preloaded ``LocalAuthority``, the rules, the journaling peer store) with fresh announces
like ``bench/announce.py --populated``'s: 10,000 torrents, 2,000 members, swarms prefilled to
``--peers`` peers each (70), every timed announce a fresh peer of a fresh (member, torrent)
pair asking for 50 peers, compact. The journal is taken every 2,000 announces, as trackerd's
sync thread does every half second. UDP (BEP 15) announces run the same way through
``UdpTracker.handle``.

Usage (from the project root)::

    .venv/bin/python bench/trackerd_path.py                  # as PBTS_SPEEDUPS says
    PBTS_SPEEDUPS=1 .venv/bin/python bench/trackerd_path.py  # the compiled build (make speedups)
    .venv/bin/python bench/trackerd_path.py --profile        # and cProfile's top functions

Prints microseconds of CPU per announce (process time, best and median of ``--rounds``) for
HTTP and UDP. For a count that does not move with the box's load, run it under valgrind's
cachegrind twice, with ``--announces 0`` and with ``--announces N --rounds 1 --wire http``
(``--torrents 1000`` keeps the prefill short), and divide the difference in instructions by
N. A figure for comparing two builds or checkouts on one box, not a throughput: the event loop
and the socket calls are left out (bench/announce.py measures those).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import struct
import sys
import time
from pathlib import Path

if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbts_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-trackerd-path-no-secret")  # no request is signed

TORRENTS = 10_000
MEMBERS = 2_000
BATCH = 2_000  # announces between two journal takes


def _setup(torrents: int, members: int):
    import django

    django.setup()
    from tracker import authcache
    from tracker.announce.records import MemberStanding, TorrentStanding
    from tracker.announce.store import MemoryPeerStore
    from tracker.announce.udp_tracker import ConnectionIds, ConnectLimiter, UdpTracker
    from tracker.announce_runtime import build_policy
    from tracker.authority import LocalAuthority
    from tracker.trackerd import TrackerServer

    rng = random.Random(17)
    passkeys = [f"{rng.getrandbits(128):032x}" for _ in range(members)]
    hashes = [rng.randbytes(20) for _ in range(torrents)]
    standings = [
        (authcache.passkey_key(pk), MemberStanding(i + 1, False, True, True))
        for i, pk in enumerate(passkeys)
    ] + [
        (authcache.torrent_key(h.hex()), TorrentStanding(i + 1, False, False))
        for i, h in enumerate(hashes)
    ]
    standings.append((authcache.CLIENTS_KEY, (b"-TR4",)))
    authcache.all_standings = lambda: iter(standings)  # the bench's members, no database
    auth = LocalAuthority(ttl=3600)
    auth.preload()
    store = MemoryPeerStore(journal=True)
    policy = build_policy()
    server = TrackerServer(authority=auth, store=store, policy=policy, snatches=lambda ids: {})
    ids = ConnectionIds(rng.randbytes(32))
    udp = UdpTracker(
        auth=auth,
        store=store,
        policy=policy,
        snatches=lambda torrent_ids: {},
        ids=ids,
        limiter=ConnectLimiter(0),
    )
    return server, udp, ids, store, passkeys, hashes


def _head(passkey: str, info_hash: bytes, numwant: int, rng: random.Random) -> bytes:
    from urllib.parse import quote_from_bytes

    peer_id = b"-TR4060-" + rng.randbytes(12)
    left = 0 if rng.random() < 0.25 else rng.randrange(1, 1 << 30)
    return (
        f"GET /announce/{passkey}?info_hash={quote_from_bytes(info_hash)}"
        f"&peer_id={quote_from_bytes(peer_id)}&port={rng.randrange(20000, 60000)}"
        f"&uploaded=0&downloaded=0&left={left}&event=started&compact=1&numwant={numwant}"
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk".encode()
    )


def _member(torrent: int, k: int, members: int) -> int:
    """The member of torrent ``torrent``'s ``k``-th announce: distinct for k < members, so
    every announce is a fresh (member, torrent) pair and the per-member peer limit (3) never
    refuses one, as in bench/announce.py."""
    return (torrent * 7 + k) % members


def _timed(answer, requests: list[tuple], store) -> tuple[float, list]:
    """Answer every ``(request, address)`` with ``answer``, taking the store's journal every
    ``BATCH`` announces as trackerd's sync thread does; returns (us of CPU per request,
    replies)."""
    replies = []
    keep, take = replies.append, store.take_journal
    start = time.process_time()
    for n, (request, address) in enumerate(requests):
        keep(answer(request, address))
        if n % BATCH == 0:
            take()
    take()
    return (time.process_time() - start) / len(requests) * 1e6, replies


def _addr(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def main(argv: list[str] | None = None) -> int:
    """Run the bench as the command line asks and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=70, help="peers per torrent before (70)")
    parser.add_argument("--announces", type=int, default=20_000, help="per round (20,000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torrents", type=int, default=TORRENTS, help=f"({TORRENTS:,})")
    parser.add_argument("--members", type=int, default=MEMBERS, help=f"({MEMBERS:,})")
    parser.add_argument(
        "--wire", choices=("both", "http", "udp"), default="both", help="which front ends run"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    args = parser.parse_args(argv)
    server, udp, ids, store, passkeys, hashes = _setup(args.torrents, args.members)
    torrents, members = len(hashes), len(passkeys)
    from tracker import speedups

    print(f"build: {'compiled' if speedups.enabled() else 'sources'}")
    rng = random.Random(4060)
    t0 = time.process_time()
    for i in range(torrents * args.peers):
        t, k = i % torrents, i // torrents  # the k-th peer of torrent t
        server.respond(_head(passkeys[_member(t, k, members)], hashes[t], 0, rng), _addr(rng))
        if i % BATCH == 0:
            store.take_journal()
    store.take_journal()
    from tracker import trackerd

    if hasattr(trackerd, "quiet_collector"):  # as trackerd's serve() does
        trackerd.quiet_collector()
    else:  # an older checkout
        import gc

        gc.collect()
        gc.freeze()
    print(f"prefill: {torrents * args.peers:,} peers in {time.process_time() - t0:.1f} s CPU")

    pair = [args.peers]  # the next fresh k (see _member) of each torrent

    checks = {"HTTP": [0, 0, 0], "UDP ": [0, 0, 0]}  # replies, refused, peers in them

    def check_http(replies: list[bytes]) -> None:
        tally = checks["HTTP"]
        for reply in replies:
            tally[0] += 1
            body = reply[reply.find(b"\r\n\r\n") + 4 :]
            if body.find(b"failure reason") >= 0:
                tally[1] += 1
            elif (at := body.find(b"5:peers")) >= 0:
                tally[2] += int(body[at + 7 : body.find(b":", at + 7)]) // 6

    def check_udp(replies: list[bytes | None]) -> None:
        tally = checks["UDP "]
        for reply in replies:
            tally[0] += 1
            if reply is None or reply[:4] != b"\0\0\0\1":
                tally[1] += 1
            else:
                tally[2] += (len(reply) - 20) // 6

    def http_round() -> float:
        heads = []
        for i in range(args.announces):
            m = _member(i % torrents, pair[0] + i // torrents, members)
            heads.append((_head(passkeys[m], hashes[i % torrents], 50, rng), _addr(rng)))
        pair[0] += -(-len(heads) // torrents)
        respond = server.respond
        us, replies = _timed(lambda head, remote: respond(head, remote)[0], heads, store)
        check_http(replies)
        return us

    def udp_round() -> float:
        packets = []
        for i in range(args.announces):
            m = _member(i % torrents, pair[0] + i // torrents, members)
            url = f"/announce/{passkeys[m]}".encode()
            packets.append(
                (
                    struct.pack(
                        ">QII20s20sQQQIIIiH",
                        int.from_bytes(ids.issue("127.0.0.1"), "big"),
                        1,
                        i,
                        hashes[i % torrents],
                        b"-TR4060-" + rng.randbytes(12),
                        0,
                        0,
                        rng.randrange(1 << 30),
                        2,
                        0,
                        0,
                        50,
                        6881,
                    )
                    + b"\x02"
                    + bytes([len(url)])
                    + url,
                    ("127.0.0.1", 6881),
                )
            )
        pair[0] += -(-len(packets) // torrents)
        us, replies = _timed(udp.handle, packets, store)
        check_udp(replies)
        return us

    http, udp_us = [], []
    for _ in range(args.rounds if args.announces else 0):
        if args.wire != "udp":
            http.append(http_round())
        if args.wire != "http":
            udp_us.append(udp_round())
    for name, figures in (("HTTP", http), ("UDP ", udp_us)):
        if figures:
            replies, refused, peers = checks[name]
            print(
                f"{name} us/announce: best {min(figures):.1f}, median"
                f" {statistics.median(figures):.1f} ({', '.join(f'{x:.1f}' for x in figures)});"
                f" {refused} of {replies:,} refused, {peers / max(replies - refused, 1):.1f}"
                " peers per reply"
            )
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        http_round()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
