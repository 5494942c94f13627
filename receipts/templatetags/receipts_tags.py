"""``{% receipts_member_block member %}``: the profile's receipts block (BLS key, verified
figures, realm id), owned by the receipts app so that tracker pages need no receipts import."""

from __future__ import annotations

from typing import Any

from django import template

from receipts.selectors import member_active_key
from receipts.site import site_realm
from reputation.models import Ledger

register = template.Library()


@register.inclusion_tag("receipts/member_block.html", takes_context=True)
def receipts_member_block(context: dict[str, Any], member: Any) -> dict[str, Any]:
    """Context of the block for the member themself or staff (the caller shows it only to
    them): the active key, the verified figures (bytes) and, for the member, the realm id."""
    request = context.get("request")
    viewer = getattr(request, "user", None)
    is_self = bool(viewer and viewer.is_authenticated and viewer.pk == member.pk)
    ledger = Ledger.objects.filter(member=member).first() or Ledger(member=member)
    return {
        "is_self": is_self,
        "bls_key": member_active_key(member),
        "verified_uploaded": ledger.verified_uploaded,
        "verified_downloaded": ledger.verified_downloaded,
        "realm_id": site_realm().hex() if is_self else "",
    }
