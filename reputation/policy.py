"""Ratio policy: one place for the rule that decides whether a member may leech.

Pure functions, no Django import; callers pass the settings' figures.
"""

from __future__ import annotations

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
