"""``{% bonus_member_block member %}``: the profile's bonus block (balance and bonus upload),
owned by the reputation app; the profile shows it to the member and to staff only.
``{{ millipoints|points }}`` formats a millipoint amount as points."""

from __future__ import annotations

from typing import Any

from django import template

from reputation.models import Ledger
from reputation.selectors import bonus_balance
from reputation.services import MILLI

register = template.Library()


@register.filter
def points(millipoints: int | None) -> str:
    """Millipoints as points with three decimals and thousands separators (``1,234.500``)."""
    return f"{(millipoints or 0) / MILLI:,.3f}"


@register.inclusion_tag("reputation/bonus_member_block.html", takes_context=True)
def bonus_member_block(context: dict[str, Any], member: Any) -> dict[str, Any]:
    """Context of the block: the balance (millipoints), the bonus upload (bytes) and whether
    the viewer is the member (who gets a link to the store)."""
    request = context.get("request")
    viewer = getattr(request, "user", None)
    ledger = Ledger.objects.filter(member=member).first()
    return {
        "is_self": bool(viewer and viewer.is_authenticated and viewer.pk == member.pk),
        "balance": bonus_balance(member_id=member.pk),
        "bonus_uploaded": ledger.bonus_uploaded if ledger else 0,
    }
