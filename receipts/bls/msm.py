"""Multi-scalar multiplication sum(s_i * P_i) for short scalars (Pippenger's bucket method).

pyblst exposes no MSM, and its ``scalar_mul`` is constant time (about as slow for a 64-bit
scalar as for a 255-bit one: ~85 point additions' worth). With short random scalars, buckets of
plain additions are several times cheaper per point once there are more than a handful of
points; :func:`msm` picks whichever of the two costs fewer additions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Cost of one constant-time scalar_mul in point additions (measured with pyblst 0.3.15 on G2:
# ~280 us per scalar_mul against ~3.3 us per addition).
SCALAR_MUL_COST_IN_ADDS = 84


def pippenger_cost(n: int, bits: int, window: int) -> int:
    """Point additions of the bucket method for n points, bits-bit scalars and a window of
    ``window`` bits: per window one addition per point, two per bucket, plus the doublings."""
    windows = -(-bits // window)
    return windows * (n + 2 * (1 << window)) + bits


def best_window(n: int, bits: int) -> tuple[int, int]:
    """(window, cost) minimising :func:`pippenger_cost` for n points."""
    return min(((w, pippenger_cost(n, bits, w)) for w in range(1, 16)), key=lambda wc: wc[1])


def msm(points: Sequence[Any], scalars: Sequence[int], bits: int, zero: Callable[[], Any]) -> Any:
    """sum(scalars[i] * points[i]) for scalars in [0, 2**bits).

    ``points`` support ``+`` (including P + P and the identity) and ``scalar_mul(int)``;
    ``zero()`` returns the identity. Raises ValueError when the lengths differ or a scalar is out
    of range.
    """
    if len(points) != len(scalars):
        raise ValueError("points and scalars differ in length")
    if any(s < 0 or s >> bits for s in scalars):
        raise ValueError(f"scalars must be in [0, 2**{bits})")
    window, cost = best_window(len(points), bits)
    if cost >= SCALAR_MUL_COST_IN_ADDS * len(points):
        total = zero()
        for point, scalar in zip(points, scalars, strict=True):
            total = total + point.scalar_mul(scalar)
        return total
    return _buckets(points, scalars, bits, window, zero)


def _buckets(
    points: Sequence[Any], scalars: Sequence[int], bits: int, window: int, zero: Callable[[], Any]
) -> Any:
    """Pippenger: for each window from the top, double the result ``window`` times, drop each
    point into the bucket of its digit, and add sum(d * bucket_d) with a running sum."""
    mask = (1 << window) - 1
    result = zero()
    for shift in range(window * ((bits - 1) // window), -1, -window):
        for _ in range(window):
            result = result + result
        buckets: list[Any] = [None] * (mask + 1)
        for point, scalar in zip(points, scalars, strict=True):
            digit = (scalar >> shift) & mask
            if digit:
                bucket = buckets[digit]
                buckets[digit] = point if bucket is None else bucket + point
        running = zero()
        for digit in range(mask, 0, -1):
            if buckets[digit] is not None:
                running = running + buckets[digit]
            result = result + running
    return result
