"""Swarm state and the announce decision: peer update, per-peer deltas, peer selection.

Pure code, no Django import. A :class:`Swarm` holds one torrent's peers keyed by
``(member_id, peer_id)``; :func:`apply_announce` updates it for one parsed announce and returns
what to credit and which peers to hand out. Rules:

- Credit per-peer deltas since that peer's last announce, never the client's totals (a peer seen
  for the first time sets the baseline); a counter lower than last time is a client restart, so
  the new value itself is the delta (Ocelot/opentracker practice).
- A duplicate (same peer and event within ``DUPLICATE_WINDOW`` seconds, as dual-stack clients
  send over IPv4 and IPv6) credits nothing twice (its counters are the same) and is answered,
  not refused; the peer keeps both addresses.
- An announce inside ``min interval`` is refused unless it is ``completed`` or ``stopped``.
- Seeders get leechers only; a peer never gets itself; peers are picked at random (BEP 3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DUPLICATE_WINDOW = 5.0  # seconds

PeerKey = tuple[int, bytes]  # (member_id, peer_id)


class Refused(Exception):
    """The swarm refuses the announce; ``reason`` becomes the ``failure reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class PeerState:
    """A peer's last announce. ``compact4``/``compact6`` are its BEP 23/7 entries (6/18 bytes,
    empty when the peer has no such address); counters are bytes; ``announced_at`` seconds."""

    member_id: int
    peer_id: bytes
    compact4: bytes
    compact6: bytes
    uploaded: int
    downloaded: int
    left: int
    key: bytes
    event: str
    announced_at: float

    @property
    def is_seeder(self) -> bool:
        """A peer with nothing left to download (BEP 21 partial seeds count as seeders)."""
        return self.left == 0 or self.event == "paused"


@dataclass(slots=True)
class Credit:
    """What one announce credits: bytes uploaded/downloaded after freeleech and double upload,
    seconds seeding, and whether it completed a download (a snatch)."""

    uploaded: int = 0
    downloaded: int = 0
    seed_seconds: int = 0
    snatched: bool = False

    def __bool__(self) -> bool:
        return bool(self.uploaded or self.downloaded or self.seed_seconds or self.snatched)


class _IndexedSet:
    """Keys in a list plus a position map: O(1) add, remove and random sampling."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[PeerKey] = []
        self.pos: dict[PeerKey, int] = {}

    def add(self, key: PeerKey) -> None:
        if key not in self.pos:
            self.pos[key] = len(self.items)
            self.items.append(key)

    def discard(self, key: PeerKey) -> None:
        index = self.pos.pop(key, None)
        if index is None:
            return
        last = self.items.pop()
        if index < len(self.items):
            self.items[index] = last
            self.pos[last] = index

    def sample(self, count: int, rng: random.Random) -> list[PeerKey]:
        if count >= len(self.items):
            return list(self.items)
        return rng.sample(self.items, count)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class Swarm:
    """One torrent's peers. ``snatches`` counts completions seen by this process (the
    authoritative count is the database's, once per member)."""

    peers: dict[PeerKey, PeerState] = field(default_factory=dict)
    seeders: _IndexedSet = field(default_factory=_IndexedSet)
    leechers: _IndexedSet = field(default_factory=_IndexedSet)
    per_member: dict[int, int] = field(default_factory=dict)

    def put(self, state: PeerState) -> None:
        """Insert or replace a peer, keeping the seeder/leecher sets and member counts."""
        key = (state.member_id, state.peer_id)
        if key not in self.peers:
            self.per_member[state.member_id] = self.per_member.get(state.member_id, 0) + 1
        self.peers[key] = state
        if state.is_seeder:
            self.leechers.discard(key)
            self.seeders.add(key)
        else:
            self.seeders.discard(key)
            self.leechers.add(key)

    def remove(self, key: PeerKey) -> PeerState | None:
        """Remove a peer; returns its last state, or ``None`` if it was not there."""
        state = self.peers.pop(key, None)
        if state is None:
            return None
        self.seeders.discard(key)
        self.leechers.discard(key)
        left = self.per_member.get(key[0], 1) - 1
        if left:
            self.per_member[key[0]] = left
        else:
            self.per_member.pop(key[0], None)
        return state

    def reap(self, older_than: float) -> list[PeerState]:
        """Remove peers whose last announce is before ``older_than`` (seconds)."""
        stale = [k for k, p in self.peers.items() if p.announced_at < older_than]
        return [state for k in stale if (state := self.remove(k)) is not None]

    @property
    def complete(self) -> int:
        """Seeders (BEP 3/48 ``complete``)."""
        return len(self.seeders)

    @property
    def incomplete(self) -> int:
        """Leechers (BEP 3/48 ``incomplete``)."""
        return len(self.leechers)

    def select(self, key: PeerKey, *, seeder: bool, count: int, rng: random.Random) -> list:
        """Pick up to ``count`` peers at random for the peer ``key``; seeders get leechers
        only; the peer itself is never included. Returns :class:`PeerState` objects."""
        if count <= 0:
            return []
        pools = [self.leechers] if seeder else [self.leechers, self.seeders]
        chosen: list[PeerState] = []
        for pool in pools:
            need = count - len(chosen)
            if need <= 0:
                break
            for other in pool.sample(need + 1, rng):
                if other != key and len(chosen) < count:
                    chosen.append(self.peers[other])
        return chosen


@dataclass(frozen=True, slots=True)
class Rules:
    """Tracker rules for one announce. Seconds for intervals; ``max_peers`` caps numwant."""

    interval: int = 1800
    min_interval: int = 900
    max_peers: int = 50
    default_numwant: int = 50
    max_peers_per_member: int = 3
    max_seed_gap: int = 3600


def _delta(new: int, old: int) -> int:
    """Bytes since the last announce; a lower counter means the client restarted from 0."""
    return new - old if new >= old else new


@dataclass(slots=True)
class Announce:
    """One authorized announce as the swarm sees it (the address is the socket's)."""

    member_id: int
    peer_id: bytes
    compact4: bytes
    compact6: bytes
    uploaded: int
    downloaded: int
    left: int
    event: str
    key: bytes
    numwant: int | None
    is_freeleech: bool = False
    is_double_upload: bool = False
    may_leech: bool = True
    leech_refusal: str = ""


@dataclass(slots=True)
class Outcome:
    """The result of :func:`apply_announce`: the credit, the peers to return, and the peer's
    state before and after (``None`` when absent)."""

    credit: Credit
    peers: list[PeerState]
    complete: int
    incomplete: int
    refusal: str = ""
    prev: PeerState | None = None
    state: PeerState | None = None


def _check_admission(
    swarm: Swarm,
    ann: Announce,
    prev: PeerState | None,
    *,
    duplicate: bool,
    now: float,
    rules: Rules,
) -> None:
    if prev is not None:
        too_soon = not duplicate and now - prev.announced_at < rules.min_interval
        if too_soon and ann.event not in ("completed", "stopped"):
            raise Refused("Announce too soon")
    elif (
        ann.event != "stopped"
        and swarm.per_member.get(ann.member_id, 0) >= rules.max_peers_per_member
    ):
        raise Refused(
            f"Too many peers: at most {rules.max_peers_per_member} per member per torrent"
        )


def is_duplicate(prev: PeerState | None, ann: Announce, now: float) -> bool:
    """Same peer, same event within ``DUPLICATE_WINDOW`` seconds: the second leg of a
    dual-stack client's announce (IPv4 and IPv6), answered rather than refused."""
    return (
        prev is not None and ann.event == prev.event and now - prev.announced_at < DUPLICATE_WINDOW
    )


def settle(
    prev: PeerState | None, ann: Announce, *, now: float, rules: Rules
) -> tuple[Credit, PeerState | None]:
    """The one rule for crediting an announce against the peer's last state.

    Returns the credit and the peer's new state (``None`` when the peer leaves the swarm:
    ``stopped``, or a leecher that may not leech). Deltas are safe against repeats: a
    duplicate carries the same counters, so it credits nothing; a snatch needs ``left > 0``
    before. Both trackerd's Redis reconciliation and :func:`apply_announce` use it.
    """
    credit = Credit()
    if prev is not None:
        up = _delta(ann.uploaded, prev.uploaded)
        down = _delta(ann.downloaded, prev.downloaded)
        credit.uploaded = up * 2 if ann.is_double_upload else up
        credit.downloaded = 0 if ann.is_freeleech else down
        if prev.is_seeder:
            credit.seed_seconds = int(min(max(now - prev.announced_at, 0), rules.max_seed_gap))
        credit.snatched = ann.event == "completed" and prev.left > 0
    leeching = ann.left > 0 and ann.event != "paused"
    if ann.event == "stopped" or (leeching and not ann.may_leech):
        return credit, None
    merge = is_duplicate(prev, ann, now)
    state = PeerState(
        member_id=ann.member_id,
        peer_id=ann.peer_id,
        compact4=ann.compact4 or (prev.compact4 if merge and prev else b""),
        compact6=ann.compact6 or (prev.compact6 if merge and prev else b""),
        uploaded=ann.uploaded,
        downloaded=ann.downloaded,
        left=ann.left,
        key=ann.key,
        event=ann.event,
        announced_at=now,
    )
    return credit, state


def apply_announce(
    swarm: Swarm, ann: Announce, *, now: float, rules: Rules, rng: random.Random
) -> Outcome:
    """Update ``swarm`` for one announce and compute its credit and peer list.

    A refused leecher (ratio or downloading disabled) is still credited for what it did since
    its last announce, then dropped from the swarm; ``Outcome.refusal`` carries the reason.

    Raises:
        Refused: announce inside ``min interval``; too many peers for this member.
    """
    key = (ann.member_id, ann.peer_id)
    prev = swarm.peers.get(key)
    _check_admission(swarm, ann, prev, duplicate=is_duplicate(prev, ann, now), now=now, rules=rules)
    credit, state = settle(prev, ann, now=now, rules=rules)
    if state is None:
        swarm.remove(key)
        refusal = "" if ann.event == "stopped" else ann.leech_refusal
        return Outcome(credit, [], swarm.complete, swarm.incomplete, refusal, prev, None)
    swarm.put(state)
    count = min(rules.default_numwant if ann.numwant is None else ann.numwant, rules.max_peers)
    peers = swarm.select(key, seeder=state.is_seeder, count=count, rng=rng)
    return Outcome(credit, peers, swarm.complete, swarm.incomplete, "", prev, state)
