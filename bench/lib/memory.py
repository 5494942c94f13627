"""Memory per peer: the in-process store (VmRSS growth; tracemalloc's allocation sites) and
the Redis peer layout (``MEMORY USAGE`` per key, ``INFO memory``).

Each measurement runs in a fresh interpreter: ``python -m bench.lib.memory KIND PEERS``
(``store``, ``trace`` or ``redis``) prints its result as JSON.
"""

from __future__ import annotations

import gc
import hashlib
import json
import linecache
import random
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.lib.env import MEMBERS, PEER_ID_PREFIX, REDIS_URL, ROOT, SEEDER_SHARE, TORRENTS

TRACE_PEERS = 100_000  # peers fed under tracemalloc (it slows allocation ~5x)
#: The module whose Redis layout is measured.
REDIS_LAYOUT = ROOT / "tracker" / "announce" / "redis_sync.py"


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _announces(peers: int, seed: int = 1):
    """Yield authorized announces as the rules build them: fresh bytes and ints per announce
    (peer_id, 6-byte address, counters), spread over ``TORRENTS`` torrents and ``MEMBERS``
    members."""
    from tracker.announce.records import Announce, AnnounceRequest, Event, TorrentStanding

    rng = random.Random(seed)
    standings = [TorrentStanding(t + 1, False, False) for t in range(TORRENTS)]
    hashes = [hashlib.sha1(b"%d" % t).digest() for t in range(TORRENTS)]
    for i in range(peers):
        torrent = i % TORRENTS
        port = rng.randrange(1025, 65536)
        request = AnnounceRequest(
            info_hash=hashes[torrent],
            peer_id=PEER_ID_PREFIX + rng.randbytes(12),
            port=port,
            uploaded=rng.randrange(1 << 34),
            downloaded=rng.randrange(1 << 34),
            left=0 if rng.random() < SEEDER_SHARE else rng.randrange(1, 1 << 34),
            event=Event.STARTED,
            numwant=0,
            compact=True,
            no_peer_id=True,
            key=b"",
            passkey="",
            ipv4="",
            ipv6="",
        )
        member_id = 1000 + (i // TORRENTS + 7 * torrent) % MEMBERS
        compact4 = b"\x7f\x00\x00\x01" + port.to_bytes(2, "big")
        yield Announce(request, member_id, compact4, b"", standings[torrent])


# Announces between two drains of the accumulated credits in the memory runs: the statistics
# flush takes them every PBTS_FLUSH_SECONDS, so what stays is the peers.
FLUSH_EVERY = 20_000


def memory_child_store(peers: int) -> dict:
    """(In a fresh process) VmRSS growth of a MemoryPeerStore holding ``peers`` peers."""
    from tracker.announce.rules import Rules
    from tracker.announce.store import MemoryPeerStore

    rules, store = Rules(), MemoryPeerStore()
    gc.collect()
    before, started = _rss_bytes(), time.perf_counter()
    for n, ann in enumerate(_announces(peers), 1):
        store.announce(ann, rules=rules)
        if n % FLUSH_EVERY == 0:
            store.take_batch()  # what the statistics flush takes every few seconds
    store.take_batch()
    seconds = time.perf_counter() - started
    gc.collect()
    return {"peers": peers, "bytes": _rss_bytes() - before, "seconds": seconds}


def memory_child_trace(peers: int) -> dict:
    """(In a fresh process) tracemalloc's count of what the store keeps, by allocation site."""
    from tracker.announce.rules import Rules
    from tracker.announce.store import MemoryPeerStore

    rules, store = Rules(), MemoryPeerStore()
    feed = _announces(peers)
    tracemalloc.start()
    for n, ann in enumerate(feed, 1):
        store.announce(ann, rules=rules)
        if n % FLUSH_EVERY == 0:
            store.take_batch()
    store.take_batch()
    del ann, feed
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    sites = []
    for stat in snapshot.statistics("lineno")[:6]:
        frame = stat.traceback[0]
        code = linecache.getline(frame.filename, frame.lineno).strip()
        sites.append((f"{Path(frame.filename).name}:{frame.lineno} {code[:50]}", stat.size))
    return {"peers": peers, "bytes": traced, "sites": sites}


def memory_child_redis(peers: int) -> dict:
    """(In a fresh process) fill the Redis peer layout of ``tracker.announce.redis_sync`` with
    ``peers`` peers in the bench db, measure it, empty the db."""
    import redis

    from tracker.announce.redis_stats import RedisStatsQueue
    from tracker.announce.redis_sync import RedisPeerSync
    from tracker.announce.rules import Rules
    from tracker.announce.store import MemoryPeerStore

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    prefix = "benchmem:tracker"
    rules = Rules()
    store = MemoryPeerStore(journal=True)
    sync = RedisPeerSync(client, store, prefix=prefix, rules=rules)
    queue = RedisStatsQueue(client, prefix=prefix)
    try:
        used_before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        for n, ann in enumerate(_announces(peers), 1):
            store.announce(ann, rules=rules)
            if n % FLUSH_EVERY == 0 or n == peers:
                sync.push(store.take_journal())
                for batch_id in filter(None, [queue.claim()]):
                    queue.done(batch_id)  # what the statistics flush does every few seconds
        seconds = time.perf_counter() - started
        used_after = client.info("memory")["used_memory"]
        by_kind: Counter = Counter()
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            kind = key.decode().split(":")[2]
            by_kind[kind] += client.memory_usage(key, samples=0) or 0
        listpack = client.config_get("hash-max-listpack-entries")
        return {
            "peers": peers,
            "used_memory": used_after - used_before,
            "by_kind": dict(by_kind),
            "seconds": seconds,
            "listpack_entries": int(next(iter(listpack.values()), 0)),
        }
    finally:
        client.flushdb()


def run_memory_child(kind: str, peers: int, timeout: float = 900) -> dict:
    """Run one memory measurement in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, "-m", "bench.lib.memory", kind, str(peers)]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child {kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class MemoryResult:
    """Bytes per peer of the in-process store and of the Redis layout (None: not measured)."""

    peers: int
    store_bytes_per_peer: float
    store_seconds: float
    trace_peers: int
    trace_bytes_per_peer: float
    trace_sites: list
    redis: dict | None
    redis_note: str

    @property
    def redis_peers_bytes_per_peer(self) -> float | None:
        """``MEMORY USAGE`` of the ``peers`` hashes per peer."""
        return self.redis["by_kind"].get("peers", 0) / self.peers if self.redis else None

    @property
    def redis_keys_bytes_per_peer(self) -> float | None:
        """``MEMORY USAGE`` of every key of the layout (peers, counts, log ...) per peer."""
        return sum(self.redis["by_kind"].values()) / self.peers if self.redis else None

    @property
    def redis_used_bytes_per_peer(self) -> float | None:
        """``INFO memory`` used_memory growth per peer (the whole instance: noisy if others
        use it meanwhile)."""
        return self.redis["used_memory"] / self.peers if self.redis else None


def measure_memory(peers: int) -> MemoryResult:
    """Run the memory children: the store (RSS), tracemalloc (sites), Redis (if present)."""
    print(f"\nMemory per peer, {peers:,} peers over {TORRENTS:,} torrents", flush=True)
    store = run_memory_child("store", peers)
    trace_peers = min(peers, TRACE_PEERS)
    trace = run_memory_child("trace", trace_peers)
    redis_result, note = None, ""
    try:
        redis_result = run_memory_child("redis", peers)
        note = f"layout of {REDIS_LAYOUT.relative_to(ROOT)}"
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        note = f"redis peer store: not measurable: {exc}"
    return MemoryResult(
        peers=peers,
        store_bytes_per_peer=store["bytes"] / peers,
        store_seconds=store["seconds"],
        trace_peers=trace_peers,
        trace_bytes_per_peer=trace["bytes"] / trace_peers,
        trace_sites=[(site, size / trace_peers) for site, size in trace["sites"]],
        redis=redis_result,
        redis_note=note,
    )


CHILDREN = {"store": memory_child_store, "trace": memory_child_trace, "redis": memory_child_redis}


def main(argv: list[str]) -> int:
    """Child mode: ``KIND PEERS``; prints the measurement as one JSON line."""
    kind, peers = argv
    print(json.dumps(CHILDREN[kind](int(peers))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
