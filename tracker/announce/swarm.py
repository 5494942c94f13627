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

Memory: a peer is one fixed 58-byte record in its swarm's seeder or leecher ``bytearray``
plus its 6-byte IPv4 entry and its 4-byte member_id in parallel arrays (no Python object per
peer, so nothing for the cyclic garbage collector to walk); an IPv6 address adds an entry to
a side dictionary; swarms above ``INDEX_FROM`` peers add a ``{key: slot}`` index, smaller
ones find a peer with ``bytearray.find``. Peers handed out are a window of slots from a random
start.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

DUPLICATE_WINDOW = 5.0  # seconds
INDEX_FROM = 128  # peers; smaller swarms are searched, larger ones indexed

PeerKey = tuple[int, bytes]  # (member_id, peer_id)
EVENTS = ("", "started", "completed", "stopped", "paused")
_EVENT_CODE = {name: code for code, name in enumerate(EVENTS)}

# One peer: announced_at (float seconds), member_id, peer_id, uploaded, downloaded, left
# (bytes), event code, flags (bit 0: has an IPv4 entry). Bytes 8-32 are the swarm key. The
# peer's 6-byte IPv4 entry sits at the same slot of a parallel array (zeros if none), so a run
# of slots is one slice of compact peers.
_RECORD = struct.Struct("<dI20sQQQBB")
RECORD_SIZE = _RECORD.size  # 58
ADDR_SIZE = 6
MEMBER_SIZE = 4
_KEY_AT = 8
_MEMBER_END = _KEY_AT + MEMBER_SIZE
_KEY_END = 32
_TIMES = struct.Struct(f"<d{RECORD_SIZE - 8}x")
_MEMBER = struct.Struct("<I")
_NO_ADDR = bytes(ADDR_SIZE)


class Refused(Exception):
    """The swarm refuses the announce; ``reason`` becomes the ``failure reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class PeerState:
    """A peer's last announce. ``compact4``/``compact6`` are its BEP 23/7 entries (6/18 bytes,
    empty when the peer has no such address); counters are bytes; ``announced_at`` seconds.

    The client's ``key`` parameter is not kept: the passkey and peer_id already identify the
    peer when its address changes."""

    member_id: int
    peer_id: bytes
    compact4: bytes
    compact6: bytes
    uploaded: int
    downloaded: int
    left: int
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


def swarm_key(member_id: int, peer_id: bytes) -> bytes:
    """The 24-byte key of a peer inside a swarm: member_id (4 bytes LE) + peer_id (20)."""
    return _MEMBER.pack(member_id) + peer_id


def _aligned(buf: bytearray, needle: bytes, at: int, size: int = RECORD_SIZE) -> int:
    """Slot of the ``size``-byte entry whose bytes ``at..`` start with ``needle``, or -1."""
    pos = buf.find(needle, at)
    while pos != -1 and (pos - at) % size:
        pos = buf.find(needle, pos + 1)
    return -1 if pos == -1 else (pos - at) // size


def _window(total: int, count: int, own: int, rng: random.Random) -> list[tuple[int, int]]:
    """Up to ``count`` of ``total`` slots as ``[(start, stop)]`` runs: a window from a random
    start, wrapping around, without slot ``own`` (-1: none). Every slot is equally likely to be
    in it (BEP 3 asks for a random list; opentracker picks runs the same way)."""
    span = min(count + (own >= 0), total)
    start = rng.randrange(total) if span < total else 0
    end = start + span
    runs = [(start, end)] if end <= total else [(start, total), (0, end - total)]
    out: list[tuple[int, int]] = []
    taken = 0
    for a, b in runs:
        for lo, hi in ((a, own), (own + 1, b)) if a <= own < b else ((a, b),):
            hi = min(hi, lo + count - taken)
            if hi > lo:
                out.append((lo, hi))
                taken += hi - lo
    return out


class _Pool:
    """Seeders or leechers of one swarm: ``records`` (``RECORD_SIZE`` bytes per slot),
    ``addrs`` (the 6-byte IPv4 entry of the same slot) and ``members`` (its 4-byte member_id,
    so counting a member's peers scans 4 bytes a peer, not 58); ``n`` slots; ``no_addr``
    counts IPv6-only peers."""

    __slots__ = ("addrs", "members", "n", "no_addr", "records")

    def __init__(self) -> None:
        self.records = bytearray()
        self.addrs = bytearray()
        self.members = bytearray()
        self.n = 0
        self.no_addr = 0

    def __len__(self) -> int:
        return self.n

    def append(self, record: bytes, addr: bytes) -> int:
        self.records += record
        self.addrs += addr
        self.members += record[_KEY_AT:_MEMBER_END]
        if addr is _NO_ADDR:
            self.no_addr += 1
        self.n += 1
        return self.n - 1

    def set(self, slot: int, record: bytes, addr: bytes) -> None:
        """Replace the peer at ``slot`` by a new state of the same peer (its member_id, and so
        its ``members`` entry, stays)."""
        at = slot * RECORD_SIZE
        self.no_addr += (addr is _NO_ADDR) - (not self.records[at + RECORD_SIZE - 1] & 1)
        self.records[at : at + RECORD_SIZE] = record
        self.addrs[slot * ADDR_SIZE : (slot + 1) * ADDR_SIZE] = addr

    def key(self, slot: int) -> bytes:
        at = slot * RECORD_SIZE
        return bytes(self.records[at + _KEY_AT : at + _KEY_END])

    def has_addr(self, slot: int) -> bool:
        return bool(self.records[slot * RECORD_SIZE + RECORD_SIZE - 1] & 1)

    def delete(self, slot: int) -> None:
        """Remove a slot by moving the last one into it."""
        records, addrs, members = self.records, self.addrs, self.members
        at, last = slot * RECORD_SIZE, len(records) - RECORD_SIZE
        if not records[at + RECORD_SIZE - 1] & 1:
            self.no_addr -= 1
        if at != last:
            records[at : at + RECORD_SIZE] = records[last:]
            addrs[slot * ADDR_SIZE : (slot + 1) * ADDR_SIZE] = addrs[-ADDR_SIZE:]
            members[slot * MEMBER_SIZE : (slot + 1) * MEMBER_SIZE] = members[-MEMBER_SIZE:]
        del records[last:]
        del addrs[-ADDR_SIZE:]
        del members[-MEMBER_SIZE:]
        self.n -= 1


Location = tuple[bool, int]  # (is_seed, slot)


class Swarm:
    """One torrent's peers: ``seeds`` and ``leeches`` pools of packed records, ``v6`` (swarm
    key -> 18-byte IPv6 entry) and, for large swarms, ``index`` (swarm key -> ``slot * 2 +
    is_seed``). A :data:`Location` is valid until the next change."""

    __slots__ = ("index", "leeches", "seeds", "v6")

    def __init__(self) -> None:
        self.seeds = _Pool()
        self.leeches = _Pool()
        self.v6: dict[bytes, bytes] = {}
        self.index: dict[bytes, int] | None = None

    def __len__(self) -> int:
        return self.seeds.n + self.leeches.n

    @property
    def complete(self) -> int:
        """Seeders (BEP 3/48 ``complete``)."""
        return self.seeds.n

    @property
    def incomplete(self) -> int:
        """Leechers (BEP 3/48 ``incomplete``)."""
        return self.leeches.n

    def locate(self, key: bytes) -> Location | None:
        """Where the peer with swarm key ``key`` is, or ``None``."""
        if self.index is not None:
            slot = self.index.get(key)
            return None if slot is None else (bool(slot & 1), slot >> 1)
        slot = _aligned(self.leeches.records, key, _KEY_AT)
        if slot >= 0:
            return False, slot
        slot = _aligned(self.seeds.records, key, _KEY_AT)
        return None if slot < 0 else (True, slot)

    def state_at(self, where: Location) -> PeerState:
        """Decode the peer at ``where``."""
        pool = self.seeds if where[0] else self.leeches
        slot = where[1]
        at, member_id, peer_id, up, down, left, event, flags = _RECORD.unpack_from(
            pool.records, slot * RECORD_SIZE
        )
        v6 = self.v6
        return PeerState(
            member_id=member_id,
            peer_id=peer_id,
            compact4=bytes(pool.addrs[slot * ADDR_SIZE : (slot + 1) * ADDR_SIZE])
            if flags & 1
            else b"",
            compact6=v6.get(swarm_key(member_id, peer_id), b"") if v6 else b"",
            uploaded=up,
            downloaded=down,
            left=left,
            event=EVENTS[event],
            announced_at=at,
        )

    def get(self, key: PeerKey) -> PeerState | None:
        """The peer's state, or ``None``."""
        where = self.locate(swarm_key(*key))
        return None if where is None else self.state_at(where)

    def count_member(self, member_id: int) -> int:
        """How many peers the member has in this swarm."""
        needle = _MEMBER.pack(member_id)
        count = 0
        for pool in (self.seeds, self.leeches):
            buf = pool.members
            pos = buf.find(needle)
            while pos != -1:
                if pos % MEMBER_SIZE == 0:
                    count += 1
                    pos = buf.find(needle, pos + MEMBER_SIZE)
                else:
                    pos = buf.find(needle, pos + 1)
        return count

    def member_presence(self, member_id: int) -> tuple[bool, bool]:
        """``(seeds, leeches)``: whether the member has a seeding and a leeching peer here."""
        needle = _MEMBER.pack(member_id)
        return (
            _aligned(self.seeds.members, needle, 0, MEMBER_SIZE) >= 0,
            _aligned(self.leeches.members, needle, 0, MEMBER_SIZE) >= 0,
        )

    def put(self, state: PeerState, where: Location | bool | None = False) -> Location:
        """Insert or replace a peer, moving it between seeders and leechers as needed; returns
        its new location. ``where`` is its current location when the caller knows it (``None``:
        absent); by default it is looked up."""
        key = swarm_key(state.member_id, state.peer_id)
        if where is False:
            where = self.locate(key)
        record = _RECORD.pack(
            state.announced_at,
            state.member_id,
            state.peer_id,
            state.uploaded,
            state.downloaded,
            state.left,
            _EVENT_CODE[state.event],
            1 if state.compact4 else 0,
        )
        addr = state.compact4 or _NO_ADDR
        is_seed = state.is_seeder
        if where is not None and where[0] == is_seed:
            slot = where[1]
            (self.seeds if is_seed else self.leeches).set(slot, record, addr)
        else:
            if where is not None:
                self.delete(where)
            slot = (self.seeds if is_seed else self.leeches).append(record, addr)
            if self.index is not None:
                self.index[key] = slot << 1 | is_seed
            elif self.seeds.n + self.leeches.n > INDEX_FROM:
                self._build_index()
        if state.compact6:
            self.v6[key] = state.compact6
        elif self.v6:
            self.v6.pop(key, None)
        return is_seed, slot

    def _build_index(self) -> None:
        self.index = {
            pool.key(slot): slot << 1 | is_seed
            for is_seed, pool in ((False, self.leeches), (True, self.seeds))
            for slot in range(pool.n)
        }

    def delete(self, where: Location) -> None:
        """Remove the peer at ``where``."""
        is_seed, slot = where
        pool = self.seeds if is_seed else self.leeches
        key = pool.key(slot)
        pool.delete(slot)
        if self.index is not None:
            del self.index[key]
            if slot < pool.n:
                self.index[pool.key(slot)] = slot << 1 | is_seed
        if self.v6:
            self.v6.pop(key, None)

    def remove(self, key: PeerKey) -> PeerState | None:
        """Remove a peer; returns its last state, or ``None`` if it was not there."""
        where = self.locate(swarm_key(*key))
        if where is None:
            return None
        state = self.state_at(where)
        self.delete(where)
        return state

    def reap(self, older_than: float) -> list[PeerState]:
        """Remove peers whose last announce is before ``older_than`` (seconds)."""
        gone = []
        for is_seed, pool in ((True, self.seeds), (False, self.leeches)):
            times = _TIMES.iter_unpack(pool.records)
            stale = [slot for slot, (at,) in enumerate(times) if at < older_than]
            for slot in reversed(stale):  # highest first: the slot moved in is a live one
                gone.append(self.state_at((is_seed, slot)))
                self.delete((is_seed, slot))
        return gone

    def select(
        self, exclude: Location, *, seeder: bool, count: int, rng: random.Random
    ) -> list[tuple[bool, int, int]]:
        """Choose up to ``count`` peers for the peer at ``exclude`` as ``(is_seed, start,
        stop)`` slot runs: leechers first, then seeders (seeders get leechers only); the peer
        itself is never included."""
        runs: list[tuple[bool, int, int]] = []
        for is_seed, pool in (
            ((False, self.leeches),)
            if seeder
            else (
                (False, self.leeches),
                (True, self.seeds),
            )
        ):
            total = pool.n
            if count <= 0 or not total:
                continue
            own = exclude[1] if exclude[0] == is_seed else -1
            for lo, hi in _window(total, count, own, rng):
                runs.append((is_seed, lo, hi))
                count -= hi - lo
        return runs

    def compact_peers(self, runs: list[tuple[bool, int, int]]) -> tuple[bytes, bytes]:
        """``(peers, peers6)``: the BEP 23 and BEP 7 compact strings of the chosen peers."""
        parts = []
        for is_seed, lo, hi in runs:
            pool = self.seeds if is_seed else self.leeches
            if not pool.no_addr:
                parts.append(pool.addrs[lo * ADDR_SIZE : hi * ADDR_SIZE])
                continue
            parts += [
                pool.addrs[s * ADDR_SIZE : (s + 1) * ADDR_SIZE]
                for s in range(lo, hi)
                if pool.has_addr(s)
            ]
        if not self.v6:
            return b"".join(parts), b""
        v6 = self.v6
        keys = [
            (self.seeds if is_seed else self.leeches).key(s)
            for is_seed, lo, hi in runs
            for s in range(lo, hi)
        ]
        return b"".join(parts), b"".join([v6[k] for k in keys if k in v6])

    def peer_list(self, runs: list[tuple[bool, int, int]]) -> list[tuple[bytes, bytes]]:
        """``[(peer_id, compact entry)]`` of the chosen peers (IPv4 entry if any, else IPv6)."""
        out = []
        for is_seed, lo, hi in runs:
            for slot in range(lo, hi):
                state = self.state_at((is_seed, slot))
                out.append((state.peer_id, state.compact4 or state.compact6))
        return out


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
    numwant: int | None
    compact: bool = True
    is_freeleech: bool = False
    is_double_upload: bool = False
    may_leech: bool = True
    leech_refusal: str = ""


@dataclass(slots=True)
class Outcome:
    """The result of :func:`apply_announce`: the credit, the peers to return, and the peer's
    state before and after (``None`` when absent). A compact announce gets ``peers4``/
    ``peers6`` (BEP 23/7 strings), a non-compact one ``peers`` as ``(peer_id, entry)``."""

    credit: Credit
    complete: int
    incomplete: int
    refusal: str = ""
    prev: PeerState | None = None
    state: PeerState | None = None
    peers4: bytes = b""
    peers6: bytes = b""
    peers: list[tuple[bytes, bytes]] | None = None

    @property
    def counts_changed(self) -> bool:
        """Whether the swarm's seeder or leecher count changed."""
        prev, state = self.prev, self.state
        if prev is None or state is None:
            return prev is not state
        return prev.is_seeder != state.is_seeder


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
    elif ann.event != "stopped" and swarm.count_member(ann.member_id) >= rules.max_peers_per_member:
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
    before and ``completed`` or ``left == 0`` now. Both trackerd's Redis reconciliation and
    :func:`apply_announce` use it.
    """
    credit = Credit()
    if prev is not None:
        up = _delta(ann.uploaded, prev.uploaded)
        down = _delta(ann.downloaded, prev.downloaded)
        credit.uploaded = up * 2 if ann.is_double_upload else up
        credit.downloaded = 0 if ann.is_freeleech else down
        if prev.is_seeder:
            credit.seed_seconds = int(min(max(now - prev.announced_at, 0), rules.max_seed_gap))
        # A snatch: the download finished since the last announce, whether the client says
        # `completed` or only reports left=0 (aria2 with --seed-time=0 sends just `stopped`).
        credit.snatched = prev.left > 0 and (ann.event == "completed" or ann.left == 0)
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
    key = swarm_key(ann.member_id, ann.peer_id)
    where = swarm.locate(key)
    prev = None if where is None else swarm.state_at(where)
    _check_admission(swarm, ann, prev, duplicate=is_duplicate(prev, ann, now), now=now, rules=rules)
    credit, state = settle(prev, ann, now=now, rules=rules)
    if state is None:
        if where is not None:
            swarm.delete(where)
        refusal = "" if ann.event == "stopped" else ann.leech_refusal
        return Outcome(credit, swarm.complete, swarm.incomplete, refusal, prev, None)
    where = swarm.put(state, where)
    count = min(rules.default_numwant if ann.numwant is None else ann.numwant, rules.max_peers)
    runs = swarm.select(where, seeder=state.is_seeder, count=count, rng=rng)
    outcome = Outcome(credit, swarm.complete, swarm.incomplete, "", prev, state)
    if ann.compact:
        outcome.peers4, outcome.peers6 = swarm.compact_peers(runs)
    else:
        outcome.peers = swarm.peer_list(runs)
    return outcome
