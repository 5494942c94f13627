"""The unchoker (BEP 3 leaves the algorithm to the client).

Every round (10 s) the interested peers that gave us the most (while downloading: their
download rate to us) or took the most (while seeding: our upload rate to them) keep
``slots - 1`` upload slots; one more slot goes to a random other interested peer, chosen anew
every third round (30 s) or when it leaves the running (optimistic unchoke, so newcomers get a
chance). Everyone else is choked.

:class:`Throttle` caps the session's upload rate (``--upload-rate``): the blocks asked of us
wait their turn, so a seeder can be slowed down (the tests use it to make a transfer last long
enough to interrupt it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Ranked(Protocol):
    peer_interested: bool
    rate_up: float
    rate_down: float


P = TypeVar("P", bound=Ranked)


def choose(
    peers: Sequence[P],
    *,
    slots: int,
    seeding: bool,
    new_optimistic: bool,
    optimistic: P | None,
    rng: random.Random | None = None,
) -> tuple[set[P], P | None]:
    """(peers to unchoke, the optimistic one) for this round; rates in bytes per second."""
    interested = [p for p in peers if p.peer_interested]
    ranked = sorted(interested, key=lambda p: p.rate_up if seeding else p.rate_down, reverse=True)
    keep = ranked[: max(slots - 1, 0)]
    rest = [p for p in ranked if p not in keep]
    if optimistic not in rest or new_optimistic:
        optimistic = (rng or random).choice(rest) if rest else None
    unchoke = set(keep)
    if optimistic is not None:
        unchoke.add(optimistic)
    return unchoke, optimistic


class Throttle:
    """A token bucket of ``rate`` bytes per second shared by a session's uploads (0: no
    limit), with a burst of a quarter second (at least one block)."""

    def __init__(self, rate: float = 0.0, *, clock=time.monotonic) -> None:
        self.rate = float(rate)
        self.clock = clock
        self.burst = max(self.rate / 4, 16384.0)
        self._allowance = 0.0
        self._at = clock()

    def delay(self, length: int) -> float:
        """0 when ``length`` bytes may be sent now (they are then counted), else the seconds
        to wait before asking again."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self._allowance = min(self.burst, self._allowance + (now - self._at) * self.rate)
        self._at = now
        if self._allowance < length:
            return (length - self._allowance) / self.rate
        self._allowance -= length
        return 0.0
