"""Read-side rules on the ledger, shared by every admin list and report."""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.db.models import F, Q


def below_min_ratio(*, on: Literal["ledger", "member"] = "ledger") -> Q:
    """Members the ratio rule refuses to leech (``reputation.policy.leech_verdict``): past the
    grace allowance (``PBTS_RATIO_GRACE_BYTES``, bytes downloaded) with uploaded / downloaded
    below ``MIN_RATIO``, and not ratio-exempt.

    Args:
        on: the queryset's model: ``"ledger"`` (``reputation.Ledger``) or ``"member"`` (the
            member model, through its ``ledger``).
    """
    ledger, member = ("", "member__") if on == "ledger" else ("ledger__", "")
    return Q(
        **{
            f"{ledger}downloaded__gt": settings.PBTS_RATIO_GRACE_BYTES,
            f"{ledger}uploaded__lt": F(f"{ledger}downloaded") * settings.MIN_RATIO,
            f"{member}is_ratio_exempt": False,
        }
    )


def upload_gap() -> Q:
    """Ledgers whose announced upload exceeds ``PBTS_UPLOAD_GAP_FACTOR`` x verified upload +
    ``PBTS_UPLOAD_GAP_BYTES`` (bytes): a client that reports far more upload than other
    members' receipts back is probably lying."""
    return Q(
        uploaded__gt=F("verified_uploaded") * settings.PBTS_UPLOAD_GAP_FACTOR
        + settings.PBTS_UPLOAD_GAP_BYTES
    )
