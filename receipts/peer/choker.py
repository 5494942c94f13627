"""The unchoker (BEP 3 leaves the algorithm to the client).

Every round (10 s) the interested peers that gave us the most (while downloading: their
download rate to us) or took the most (while seeding: our upload rate to them) keep
``slots - 1`` upload slots; one more slot goes to a random other interested peer, chosen anew
every third round (30 s) or when it leaves the running (optimistic unchoke, so newcomers get a
chance). Everyone else is choked.
"""

from __future__ import annotations

import random
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
