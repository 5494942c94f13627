"""Read-only views of the live swarms for pages and the API: a torrent's current peers, and
the torrents a member seeds or leeches now.

Nothing here is on the announce path and nothing here writes. Two sources, as the runtime is
built (``tracker.announce_runtime``):

- in-process (no ``REDIS_URL``, the embedded default): this process's
  :class:`~tracker.announce.store.MemoryPeerStore`, which answers the announces itself;
- shared through Redis (production, trackerd): a torrent's peers are read from its
  authoritative Redis hash ``<prefix>:peers:<torrent_id>`` (``tracker.announce.redis_sync``),
  so a web process shows what trackerd's workers pushed even before it replays their log,
  overlaid with this process's own newer announces (not pushed yet). A member's seeding and
  leeching torrents come from this process's store, which mirrors Redis (as the profile
  page's counts do): Redis keeps no per-member index.

Peers whose last announce is older than ``PBTS_PEER_TIMEOUT`` seconds are left out (a process
that died without reaping leaves them in Redis until another reaps them).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from tracker.announce.records import PeerState, split_peer_key
from tracker.announce.redis_sync import unpack_state
from tracker.announce_runtime import peer_store, runtime
from tracker.models import ClientPrefix, Member

PEERS_READ_MAX = 5000
"""Most peers read for one torrent's list (a Redis hash is scanned up to this many)."""


@dataclass(slots=True)
class PeerRow:
    """One peer as the torrent page and the API show it. Byte counters are what the client
    last announced; ``ip``/``port`` are for staff only (the views drop them for members)."""

    member_id: int
    username: str
    client: str
    uploaded: int
    downloaded: int
    left: int
    is_seeder: bool
    last_announce: datetime
    ip: str
    port: int | None


def _address(state: PeerState) -> tuple[str, int | None]:
    """``(ip, port)`` from the peer's BEP 23 (6-byte) or BEP 7 (18-byte) compact entry."""
    entry = state.compact4 or state.compact6
    if len(entry) == 6:
        return str(ipaddress.IPv4Address(entry[:4])), int.from_bytes(entry[4:6], "big")
    if len(entry) == 18:
        return str(ipaddress.IPv6Address(entry[:16])), int.from_bytes(entry[16:18], "big")
    return "", None


def client_name(peer_id: bytes, prefixes: list[tuple[str, str]]) -> str:
    """A readable client name for a peer_id: the whitelist entry (``ClientPrefix``) with the
    longest matching prefix, else the Azureus-style code (BEP 20, ``-XX1234-``), else
    ``"Unknown"``. ``prefixes`` is ``[(prefix, name)]``, longest first."""
    text = peer_id.decode("latin-1")
    for prefix, name in prefixes:
        if text.startswith(prefix):
            return name
    head = text[:8]
    if len(head) == 8 and head[0] == "-" and head[7] == "-" and head[1:7].isalnum():
        return head
    return "Unknown"


def _fresh(states: list[PeerState], now: float) -> list[PeerState]:
    cutoff = now - settings.PBTS_PEER_TIMEOUT
    return [s for s in states if s.announced_at >= cutoff]


def swarm_states(*, torrent_id: int) -> list[PeerState]:
    """The torrent's current peers (at most ``PEERS_READ_MAX``), unsorted.

    In-process: this process's store. Shared through Redis: the torrent's Redis hash (what
    every process pushed), overlaid with this process's own store where it holds a newer
    announce of a peer (its latest announces reach Redis at the next sync).

    Raises:
        redis.RedisError: Redis is unreachable (shared mode).
    """
    rt = runtime()
    local = rt.store.swarm_peers(torrent_id)
    if rt.sync is None:
        return _fresh(local[:PEERS_READ_MAX], time.time())
    by_key: dict[tuple[int, bytes], PeerState] = {}
    key = f"{rt.sync.prefix}:peers:{torrent_id}"
    for field, value in rt.sync.client.hscan_iter(key, count=1000):
        peer = split_peer_key(field)
        state = unpack_state(peer, value)
        if state is not None:
            by_key[peer] = state
        if len(by_key) >= PEERS_READ_MAX:
            break
    for state in local:
        peer = (state.member_id, state.peer_id)
        stored = by_key.get(peer)
        if (stored is None and len(by_key) < PEERS_READ_MAX) or (
            stored is not None and state.announced_at > stored.announced_at
        ):
            by_key[peer] = state
    return _fresh(list(by_key.values()), time.time())


def torrent_peer_rows(*, torrent_id: int) -> list[PeerRow]:
    """The torrent's current peers for display: seeders first, then the most recently
    announced; two queries (usernames, client whitelist) whatever the swarm's size."""
    states = swarm_states(torrent_id=torrent_id)
    states.sort(key=lambda s: (not s.is_seeder, -s.announced_at))
    names = dict(
        Member.objects.filter(pk__in={s.member_id for s in states}).values_list("pk", "username")
    )
    prefixes = sorted(ClientPrefix.objects.values_list("prefix", "name"), key=lambda p: -len(p[0]))
    rows = []
    for state in states:
        ip, port = _address(state)
        rows.append(
            PeerRow(
                member_id=state.member_id,
                username=names.get(state.member_id, ""),
                client=client_name(state.peer_id, prefixes),
                uploaded=state.uploaded,
                downloaded=state.downloaded,
                left=state.left,
                is_seeder=state.is_seeder,
                last_announce=datetime.fromtimestamp(state.announced_at, tz=UTC),
                ip=ip,
                port=port,
            )
        )
    return rows


def member_swarm_torrents(*, member_id: int) -> tuple[set[int], set[int]]:
    """``(seeding, leeching)`` torrent ids where the member has a peer now, from this
    process's store (which mirrors Redis in shared mode)."""
    return peer_store().member_torrents(member_id)
