"""One torrent's peers, packed: storage for the swarm, and :func:`apply_announce`.

Pure code, no Django import. A :class:`Swarm` holds one torrent's peers keyed by
``(member_id, peer_id)``; :func:`apply_announce` applies one authorized announce to it with the
rules of ``rules`` (admission, :func:`~tracker.announce.rules.settle`) and picks the peers to
hand out: seeders get leechers only, a peer never gets itself, and the peers are a run of slots
from a random start (BEP 3 asks for a random list; opentracker picks runs the same way).

Memory: a peer is one fixed 58-byte record in its swarm's seeder or leecher ``bytearray``
plus its 6-byte IPv4 entry and its 4-byte member_id in parallel arrays (no Python object per
peer, so nothing for the cyclic garbage collector to walk); an IPv6 address adds an entry to
a side dictionary; swarms above ``INDEX_FROM`` peers add a ``{key: slot}`` index, smaller
ones find a peer with ``bytearray.find`` of its member_id in the 4-byte member array, then
compare its 24-byte key (``records.peer_key``) at those slots only.
"""

from __future__ import annotations

import random
import struct

from tracker.announce.records import (
    EVENT_BY_CODE,
    EVENT_CODE,
    MEMBER_ID,
    STOPPED,
    Announce,
    Outcome,
    PeerKey,
    PeerState,
    peer_key,
)
from tracker.announce.rules import Rules, check_admission, settle

INDEX_FROM = 128  # peers; smaller swarms are searched, larger ones indexed

# One peer: announced_at (float seconds), member_id, peer_id, uploaded, downloaded, left
# (bytes), event code (``records.EVENT_CODE``), flags (bit 0: has an IPv4 entry); big-endian,
# so bytes 8-32 are the peer's key (``records.peer_key``). The peer's 6-byte IPv4 entry sits
# at the same slot of a parallel array (zeros if none), so a run of slots is one slice of
# compact peers.
_RECORD = struct.Struct(">dI20sQQQBB")
RECORD_SIZE = _RECORD.size  # 58
ADDR_SIZE = 6
MEMBER_SIZE = MEMBER_ID.size  # 4
_KEY_AT = 8
_MEMBER_END = _KEY_AT + MEMBER_SIZE
_KEY_END = 32
_TIMES = struct.Struct(f">d{RECORD_SIZE - 8}x")
_NO_ADDR = bytes(ADDR_SIZE)


def _aligned(buf: bytearray, needle: bytes, at: int, size: int) -> int:
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
        """Add a peer (its ``RECORD_SIZE``-byte record, its 6-byte IPv4 entry or
        ``_NO_ADDR``); returns its slot."""
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
        """The 24-byte key (``records.peer_key``) of the peer at ``slot``."""
        at = slot * RECORD_SIZE
        return bytes(self.records[at + _KEY_AT : at + _KEY_END])

    def has_addr(self, slot: int) -> bool:
        """Whether the peer at ``slot`` has an IPv4 entry (flags bit 0)."""
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
        return self.find(key)[0]

    def find(self, key: bytes) -> tuple[Location | None, int]:
        """``(location, member_peers)``: where the peer with swarm key ``key`` is (``None``:
        absent) and how many peers its member has in this swarm, or -1 where that was not
        counted (an indexed swarm: ask :meth:`count_member`).

        A searched swarm finds the member's slots in the 4-byte member array (a new member in
        the swarm, the common case, costs one short scan per pool), then compares the key at
        each of them, so the per-member limit's count comes with the lookup."""
        if self.index is not None:
            slot = self.index.get(key)
            return (None if slot is None else (bool(slot & 1), slot >> 1)), -1
        member = key[:MEMBER_SIZE]
        found = None
        count = 0
        for is_seed, pool in ((False, self.leeches), (True, self.seeds)):
            members, records = pool.members, pool.records
            pos = members.find(member)
            while pos != -1:
                if pos % MEMBER_SIZE:
                    pos = members.find(member, pos + 1)
                    continue
                count += 1
                slot = pos // MEMBER_SIZE
                if found is None and records.startswith(key, slot * RECORD_SIZE + _KEY_AT):
                    found = is_seed, slot
                pos = members.find(member, pos + MEMBER_SIZE)
        return found, count

    def state_at(self, where: Location) -> PeerState:
        """Decode the peer at ``where``."""
        pool = self.seeds if where[0] else self.leeches
        slot = where[1]
        at, member_id, peer_id, up, down, left, event, flags = _RECORD.unpack_from(
            pool.records, slot * RECORD_SIZE
        )
        v6 = self.v6
        return PeerState(  # positional, as in rules.settle
            member_id,
            peer_id,
            bytes(pool.addrs[slot * ADDR_SIZE : (slot + 1) * ADDR_SIZE]) if flags & 1 else b"",
            v6.get(peer_key(member_id, peer_id), b"") if v6 else b"",
            up,
            down,
            left,
            EVENT_BY_CODE[event],
            at,
        )

    def get(self, key: PeerKey) -> PeerState | None:
        """The peer's state, or ``None``."""
        where = self.locate(peer_key(*key))
        return None if where is None else self.state_at(where)

    def count_member(self, member_id: int) -> int:
        """How many peers the member has in this swarm."""
        needle = MEMBER_ID.pack(member_id)
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
        needle = MEMBER_ID.pack(member_id)
        return (
            _aligned(self.seeds.members, needle, 0, MEMBER_SIZE) >= 0,
            _aligned(self.leeches.members, needle, 0, MEMBER_SIZE) >= 0,
        )

    def put(self, state: PeerState, where: Location | bool | None = False) -> Location:
        """Insert or replace a peer, moving it between seeders and leechers as needed; returns
        its new location. ``where`` is its current location when the caller knows it (``None``:
        absent); by default it is looked up."""
        if where is False:
            where = self.locate(peer_key(state.member_id, state.peer_id))
        record = _RECORD.pack(
            state.announced_at,
            state.member_id,
            state.peer_id,
            state.uploaded,
            state.downloaded,
            state.left,
            EVENT_CODE[state.event],
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
                self.index[peer_key(state.member_id, state.peer_id)] = slot << 1 | is_seed
            elif self.seeds.n + self.leeches.n > INDEX_FROM:
                self._build_index()
        if state.compact6:  # the key is made only when a side table needs it
            self.v6[peer_key(state.member_id, state.peer_id)] = state.compact6
        elif self.v6:
            self.v6.pop(peer_key(state.member_id, state.peer_id), None)
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
        where = self.locate(peer_key(*key))
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


def apply_announce(
    swarm: Swarm, ann: Announce, *, now: float, rules: Rules, rng: random.Random
) -> Outcome:
    """Update ``swarm`` for one announce (``now`` in seconds) and choose its peers (``rng``).

    A refused leecher (ratio or downloading disabled) is still credited for what it did since
    its last announce, then dropped from the swarm; ``Outcome.refusal`` carries the reason.

    Raises:
        Refusal: announce inside ``min interval``; too many peers for this member
            (``rules.check_admission``).
    """
    req = ann.request
    where, member_peers = swarm.find(peer_key(ann.member_id, req.peer_id))
    prev = None if where is None else swarm.state_at(where)
    check_admission(swarm, ann, prev, now=now, rules=rules, member_peers=member_peers)
    credit, state = settle(prev, ann, now=now, rules=rules)
    if state is None:
        if where is not None:
            swarm.delete(where)
        refusal = "" if req.event is STOPPED else ann.leech_refusal
        return Outcome(credit, swarm.complete, swarm.incomplete, refusal, prev, None)
    where = swarm.put(state, where)
    count = min(rules.default_numwant if req.numwant is None else req.numwant, rules.max_peers)
    runs = swarm.select(where, seeder=state.is_seeder, count=count, rng=rng)
    outcome = Outcome(credit, swarm.complete, swarm.incomplete, "", prev, state)
    if req.compact:
        outcome.peers4, outcome.peers6 = swarm.compact_peers(runs)
    else:
        outcome.peers = swarm.peer_list(runs)
    return outcome
