"""Summary statistics of a series of samples (standard library only)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 <= q <= 100) by linear interpolation between the closest
    ranks (NumPy's default "linear" method, Hyndman and Fan type 7).

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """n samples and their mean, median, 95th and 99th percentiles and sample standard
    deviation (0 for fewer than two samples), in the samples' unit."""

    n: int
    mean: float
    median: float
    p95: float
    p99: float
    stdev: float


def summarize(values: Sequence[float]) -> Summary | None:
    """The :class:`Summary` of ``values``; ``None`` when there are none (a measurement that
    did not run, e.g. a TEE row without a TEE)."""
    if not values:
        return None
    return Summary(
        n=len(values),
        mean=statistics.fmean(values),
        median=statistics.median(values),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
    )
