"""The reputation sections of "Export my data" (``core.mydata``): the member's ledger and bonus
points."""

from __future__ import annotations

from typing import Any

from reputation.models import BonusAccount, BonusTransaction, Ledger


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


def bonus_section(member: Any) -> dict[str, Any] | None:
    """The bonus balance and every bonus transaction (millipoints; 1 point = 1000), oldest
    first, or ``None`` when the member never had points."""
    account = BonusAccount.objects.filter(member=member).first()
    if account is None:
        return None
    rows = BonusTransaction.objects.filter(member=member).order_by("created_at", "id")
    return {
        "balance_millipoints": account.balance,
        "transactions": list(
            rows.values("kind", "amount", "balance_after", "reference", "created_at")
        ),
    }


def register() -> None:
    """Register the section (called from ``ReputationConfig.ready``)."""
    from core.mydata import register_section

    register_section("ledger", ledger_section)
    register_section("bonus", bonus_section)
