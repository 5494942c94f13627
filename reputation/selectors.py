"""Read-side rules on the ledger, shared by every admin list and report."""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.db.models import F, Q
from django.db.models.lookups import LessThan

from reputation.models import BonusAccount, BonusTransaction


def below_min_ratio(*, on: Literal["ledger", "member"] = "ledger") -> Q:
    """Members the ratio rule refuses to leech (``reputation.policy.leech_verdict``): past the
    grace allowance (``PBTS_RATIO_GRACE_BYTES``, bytes downloaded) with uploaded (announced
    plus bonus upload, ``reputation.policy.site_uploaded``) / downloaded below ``MIN_RATIO``,
    and not ratio-exempt.

    Args:
        on: the queryset's model: ``"ledger"`` (``reputation.Ledger``) or ``"member"`` (the
            member model, through its ``ledger``).
    """
    ledger, member = ("", "member__") if on == "ledger" else ("ledger__", "")
    return Q(
        **{
            f"{ledger}downloaded__gt": settings.PBTS_RATIO_GRACE_BYTES,
            f"{member}is_ratio_exempt": False,
        }
    ) & Q(
        LessThan(
            F(f"{ledger}uploaded") + F(f"{ledger}bonus_uploaded"),
            F(f"{ledger}downloaded") * settings.MIN_RATIO,
        )
    )


def upload_gap() -> Q:
    """Ledgers whose announced upload exceeds ``PBTS_UPLOAD_GAP_FACTOR`` x verified upload +
    ``PBTS_UPLOAD_GAP_BYTES`` (bytes): a client that reports far more upload than other
    members' receipts back is probably lying."""
    return Q(
        uploaded__gt=F("verified_uploaded") * settings.PBTS_UPLOAD_GAP_FACTOR
        + settings.PBTS_UPLOAD_GAP_BYTES
    )


def bonus_recent(*, member_id: int, limit: int = 20) -> list[BonusTransaction]:
    """The member's ``limit`` most recent bonus transactions (newest first), as
    ``reputation.models.BonusTransaction`` rows (index ``bonus_tx_member_created``)."""
    return list(BonusTransaction.objects.filter(member_id=member_id)[:limit])


def bonus_balance(*, member_id: int) -> int:
    """The member's bonus balance in millipoints (0 without an account row)."""
    row = BonusAccount.objects.filter(member_id=member_id).values_list("balance", flat=True)
    return row.first() or 0
