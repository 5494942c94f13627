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


_ALLOWED = RatioVerdict(True)  # immutable: one instance serves every allowed verdict


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
        return _ALLOWED
    current = ratio(uploaded, downloaded) or 0.0
    if current >= min_ratio:
        return _ALLOWED
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


@dataclass(frozen=True, slots=True)
class ImportedPolicy:
    """How figures imported from a predecessor site (``Ledger.imported_*``, written only by a
    chain migration, docs/chain.md) count for the site's ratio rule (settings
    ``PBTS_IMPORTED_UPLOAD_COUNTS``, ``PBTS_IMPORTED_DOWNLOAD_COUNTS``,
    ``PBTS_IMPORTED_UPLOAD_CAP_BYTES``).

    ``upload_cap_bytes`` (bytes, 0: no cap) bounds the imported upload counted; when it bites,
    the imported download counted is scaled by the same factor, so the imported ratio is kept
    (a big, good history is not turned into a bad one) while the credit is bounded.
    """

    upload_counts: bool = True
    download_counts: bool = True
    upload_cap_bytes: int = 0


def site_figures(
    *,
    uploaded: int,
    downloaded: int,
    bonus_uploaded: int = 0,
    imported_uploaded: int = 0,
    imported_downloaded: int = 0,
    imported: ImportedPolicy,
) -> tuple[int, int]:
    """The ``(uploaded, downloaded)`` (bytes) the site's ratio rule counts for a member: the
    one owner of that rule, used by the announce path (``tracker.authcache``), the displayed
    ratio, the class rules and (as SQL) ``reputation.selectors.below_min_ratio``.

    Upload: announced + bought with bonus points + imported (if ``imported.upload_counts``,
    at most ``imported.upload_cap_bytes`` when non-zero). Download: announced + imported (if
    ``imported.download_counts``; scaled by ``cap / imported_uploaded`` when the cap bites).
    Verified and on-chain figures never include bonus upload, and these sums are never
    written back: ``imported_*`` stay separate from ``verified_*`` (chain push compares
    imported + verified with what it pushed).

    Args:
        uploaded, downloaded: announced totals; bonus_uploaded: ``Ledger.bonus_uploaded``;
            imported_uploaded, imported_downloaded: ``Ledger.imported_*`` (negative values
            are treated as 0); imported: the import policy.
    """
    imp_up, imp_down = max(imported_uploaded, 0), max(imported_downloaded, 0)
    cap = imported.upload_cap_bytes
    if cap > 0 and imp_up > cap:
        imp_down = imp_down * cap // imp_up
        imp_up = cap
    up = uploaded + bonus_uploaded + (imp_up if imported.upload_counts else 0)
    down = downloaded + (imp_down if imported.download_counts else 0)
    return up, down
