"""Ratio policy: one place for the rule that decides whether a member may leech.

Pure functions, no Django import; callers pass the settings' figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def ratio(uploaded: int, downloaded: int) -> float | None:
    """Share ratio uploaded/downloaded (bytes/bytes); ``None`` when nothing was downloaded."""
    if downloaded <= 0:
        return None
    return uploaded / downloaded


@dataclass(frozen=True, slots=True)
class RatioVerdict:
    """Outcome of :func:`leech_verdict`; ``reason`` is the client-facing message when refused."""

    allowed: bool
    reason: str = ""


def leech_verdict(
    *, uploaded: int, downloaded: int, min_ratio: float, grace_bytes: int, exempt: bool
) -> RatioVerdict:
    """Decide whether a member may leech (download); seeding is always allowed.

    Args:
        uploaded, downloaded: the member's totals in bytes.
        min_ratio: the required ratio (``MIN_RATIO``, e.g. 0.5).
        grace_bytes: downloads up to this many bytes are allowed whatever the ratio
            (``PBTS_RATIO_GRACE_BYTES``).
        exempt: staff exempted the member.
    """
    if exempt or downloaded <= grace_bytes:
        return RatioVerdict(True)
    current = ratio(uploaded, downloaded) or 0.0
    if current >= min_ratio:
        return RatioVerdict(True)
    return RatioVerdict(
        False, f"Downloading disabled: ratio {current:.2f} is below {min_ratio:.2f}"
    )


GIB = 1024**3


@dataclass(frozen=True, slots=True)
class BonusFormula:
    """Coefficients of :func:`bonus_points_per_hour` (settings ``PBTS_BONUS_*``):
    ``base`` points per hour, ``size_factor`` per doubling of 1 + size in GiB,
    ``rarity_factor`` divided by the seeders, ``age_factor`` reached at ``age_full_days``."""

    base: float = 1.0
    size_factor: float = 0.5
    rarity_factor: float = 1.0
    age_factor: float = 0.5
    age_full_days: float = 180.0


def bonus_points_per_hour(
    *, size: int, seeders: int, age_days: float, formula: BonusFormula
) -> float:
    """Bonus points one hour of seeding a torrent earns (UNIT3D/Gazelle style)::

        base * (1 + size_factor * log2(1 + size_GiB))
             * (1 + rarity_factor / max(seeders, 1))
             * (1 + age_factor * min(age_days / age_full_days, 1))

    Args:
        size: the torrent's size in bytes; seeders: its seeders now (the member among them,
            so at least 1); age_days: days since it was uploaded; formula: the coefficients.

    Example (docs/bonus.md): 8 GiB, 2 seeders, 90 days, default coefficients:
    1 x (1 + 0.5 x log2 9) x (1 + 1/2) x (1 + 0.5 x 0.5) = 2.585 x 1.5 x 1.25 = 4.85 points.
    """
    size_term = 1 + formula.size_factor * math.log2(1 + max(size, 0) / GIB)
    rarity_term = 1 + formula.rarity_factor / max(seeders, 1)
    full = formula.age_full_days if formula.age_full_days > 0 else 1.0
    age_term = 1 + formula.age_factor * min(max(age_days, 0.0) / full, 1.0)
    return formula.base * size_term * rarity_term * age_term


def site_uploaded(*, uploaded: int, bonus_uploaded: int) -> int:
    """Upload (bytes) the site's ratio rule counts: announced plus bought with bonus points.
    Verified, imported and on-chain figures never include the bonus part."""
    return uploaded + bonus_uploaded
