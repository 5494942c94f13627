"""The reputation section of "Export my data" (``core.mydata``): the member's ledger."""

from __future__ import annotations

from typing import Any

from reputation.models import Ledger


def ledger_section(member: Any) -> dict[str, Any] | None:
    """Every figure of the member's ledger (bytes, seconds), or ``None`` without a ledger.

    Reads all the model's concrete fields, so figures added later are exported too."""
    ledger = Ledger.objects.filter(member=member).first()
    if ledger is None:
        return None
    return {
        field.name: getattr(ledger, field.attname)
        for field in Ledger._meta.concrete_fields
        if field.name != "member"
    }


def register() -> None:
    """Register the section (called from ``ReputationConfig.ready``)."""
    from core.mydata import register_section

    register_section("ledger", ledger_section)
