"""The in-process peer store: swarms, per-(member, torrent) credit accumulators, the reaper.

Pure code, no Django import. Used by the embedded default (the Django view in one process) and,
as its in-memory layer, by ``trackerd``. Thread-safe: one lock guards swarms and accumulators,
so an announce's state update and its credit are applied together.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tracker.announce.records import (
    Announce,
    Credit,
    Outcome,
    PeerKey,
    PeerState,
    StatsBatch,
    StatsKey,
    add_credit,
)
from tracker.announce.rules import Rules
from tracker.announce.swarm import Swarm, apply_announce


@dataclass(slots=True)
class Change:
    """One change to a peer, journaled for sharing through Redis: ``prev`` is the state this
    process based it on, ``state`` the result (``None``: the peer left). ``ann`` and ``now``
    (seconds) let a conflicting change be settled again; ``ann`` is ``None`` for a reap."""

    torrent_id: int
    key: PeerKey
    prev: PeerState | None
    state: PeerState | None
    credit: Credit
    ann: Announce | None
    now: float


class MemoryPeerStore:
    """Swarms by torrent id, held in this process's memory.

    Args:
        clock: returns seconds (``time.time`` by default; tests pass a fake clock).
        rng: the random source for peer selection.
        journal: record every change for a sharing layer (``take_journal``) instead of
            accumulating credits here; used when Redis is the accumulator.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        journal: bool = False,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._swarms: dict[int, Swarm] = {}
        self._credits: dict[StatsKey, Credit] = {}
        self._dirty: set[int] = set()
        self._journaling = journal
        self._journal: list[Change] = []

    def _swarm(self, torrent_id: int) -> Swarm:
        swarm = self._swarms.get(torrent_id)
        if swarm is None:
            swarm = self._swarms[torrent_id] = Swarm()
        return swarm

    def _drop_if_empty(self, torrent_id: int) -> None:
        swarm = self._swarms.get(torrent_id)
        if swarm is not None and not len(swarm):
            del self._swarms[torrent_id]

    def announce(self, ann: Announce, *, rules: Rules) -> Outcome:
        """Apply one authorized announce to its torrent's swarm and accumulate its credit (or
        journal the change, for a sharing layer).

        Raises:
            tracker.announce.records.Refusal: as :func:`~tracker.announce.swarm.apply_announce`.
        """
        torrent_id = ann.torrent.torrent_id
        with self._lock:
            swarm = self._swarm(torrent_id)
            now = self._clock()
            outcome = apply_announce(swarm, ann, now=now, rules=rules, rng=self._rng)
            if self._journaling:
                self._journal.append(
                    Change(
                        torrent_id,
                        (ann.member_id, ann.request.peer_id),
                        outcome.prev,
                        outcome.state,
                        outcome.credit,
                        ann,
                        now,
                    )
                )
            elif outcome.credit or outcome.state is not None:
                # Even an empty credit: the flush records that the member is in this swarm.
                add_credit(self._credits, (ann.member_id, torrent_id), outcome.credit)
            if outcome.counts_changed:
                self._dirty.add(torrent_id)
            self._drop_if_empty(torrent_id)  # also after a first announce that left no peer
            return outcome

    def take_journal(self) -> list[Change]:
        """Take the changes recorded since the last call (journaling stores only)."""
        with self._lock:
            journal, self._journal = self._journal, []
            return journal

    def restore_journal(self, changes: list[Change]) -> None:
        """Put back changes whose push failed, ahead of newer ones (nothing lost)."""
        with self._lock:
            self._journal[:0] = changes

    def replicate(self, torrent_id: int, key: PeerKey, state: PeerState | None) -> None:
        """Apply a peer's state as another process (or Redis) knows it; no credit, no journal."""
        with self._lock:
            if state is None:
                swarm = self._swarms.get(torrent_id)
                if swarm is not None:
                    swarm.remove(key)
                    self._drop_if_empty(torrent_id)
            else:
                self._swarm(torrent_id).put(state)

    def peer(self, torrent_id: int, key: PeerKey) -> PeerState | None:
        """The peer's state as this process knows it, or ``None``."""
        with self._lock:
            swarm = self._swarms.get(torrent_id)
            return swarm.get(key) if swarm else None

    def swarm_peers(self, torrent_id: int) -> list[PeerState]:
        """Every peer of one torrent as this process knows it (a snapshot; read-only, for
        pages: ``tracker.peers``)."""
        with self._lock:
            swarm = self._swarms.get(torrent_id)
            if swarm is None:
                return []
            return [
                swarm.state_at((is_seed, slot))
                for is_seed, pool in ((True, swarm.seeds), (False, swarm.leeches))
                for slot in range(pool.n)
            ]

    def member_torrents(self, member_id: int) -> tuple[set[int], set[int]]:
        """``(seeding, leeching)``: the ids of the torrents the member has a seeding peer in,
        and a leeching peer in, as this process knows them (read-only, for browse filters)."""
        seeding: set[int] = set()
        leeching: set[int] = set()
        with self._lock:
            for torrent_id, swarm in self._swarms.items():
                seeds, leeches = swarm.member_presence(member_id)
                if seeds:
                    seeding.add(torrent_id)
                if leeches:
                    leeching.add(torrent_id)
        return seeding, leeching

    def counts(self, torrent_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """``{torrent_id: (seeders, leechers)}`` for the given torrents (zeros if none)."""
        with self._lock:
            out = {}
            for torrent_id in torrent_ids:
                swarm = self._swarms.get(torrent_id)
                out[torrent_id] = (swarm.complete, swarm.incomplete) if swarm else (0, 0)
            return out

    def member_counts(self, member_id: int) -> tuple[int, int]:
        """``(seeding, leeching)``: how many torrents the member seeds and leeches now."""
        seeding = leeching = 0
        with self._lock:
            for swarm in self._swarms.values():
                seeds, leeches = swarm.member_presence(member_id)
                seeding += seeds
                leeching += leeches
        return seeding, leeching

    def reap(self, *, max_age: float) -> int:
        """Drop peers silent for more than ``max_age`` seconds; returns how many."""
        cutoff = self._clock() - max_age
        removed = 0
        with self._lock:
            for torrent_id in list(self._swarms):
                gone = self._swarms[torrent_id].reap(cutoff)
                if gone:
                    removed += len(gone)
                    self._dirty.add(torrent_id)
                if self._journaling:
                    self._journal.extend(
                        Change(torrent_id, (p.member_id, p.peer_id), p, None, Credit(), None, 0.0)
                        for p in gone
                    )
                self._drop_if_empty(torrent_id)
        return removed

    def take_batch(self, *, with_counts: bool = True) -> StatsBatch:
        """Take every accumulated credit out for a flush, and the changed swarm counts too
        when ``with_counts`` (otherwise they keep accumulating for a later batch)."""
        with self._lock:
            batch = StatsBatch(credits=self._credits)
            self._credits = {}
            # A snatch changes the torrent's row too: its counts go with the batch.
            self._dirty.update(t for (_, t), credit in batch.credits.items() if credit.snatched)
            if not with_counts:
                return batch
            for torrent_id in self._dirty:
                swarm = self._swarms.get(torrent_id)
                batch.swarm_counts[torrent_id] = (
                    (swarm.complete, swarm.incomplete) if swarm else (0, 0)
                )
            self._dirty = set()
            return batch

    def return_batch(self, batch: StatsBatch) -> None:
        """Put a batch whose flush failed back, so nothing is lost (merged with new credit)."""
        with self._lock:
            for key, credit in batch.credits.items():
                add_credit(self._credits, key, credit)
            self._dirty.update(batch.swarm_counts)
