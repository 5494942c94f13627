"""The chain section of "Export my data" (``core.mydata``): the member's contract record and
migration requests."""

from __future__ import annotations

from typing import Any

from chain.models import ChainMember, Migration


def chain_section(member: Any) -> dict[str, Any]:
    """The member's on-chain record as last pushed (bytes) and their migrations."""
    record = ChainMember.objects.filter(member=member).first()
    migrations = [
        {
            "status": row.status,
            "source_address": row.source_address,
            "imported_uploaded": row.imported_uploaded,
            "imported_downloaded": row.imported_downloaded,
            "created_at": row.created_at,
        }
        for row in Migration.objects.filter(member=member).order_by("created_at", "id")
    ]
    return {
        "record": (
            {
                "record_id": bytes(record.record_id).hex(),
                "pushed_uploaded": record.pushed_uploaded,
                "pushed_downloaded": record.pushed_downloaded,
                "pushed_at": record.pushed_at,
                "imported_from": record.imported_from,
                "imported_at": record.imported_at,
            }
            if record is not None
            else None
        ),
        "migrations": migrations,
    }


def register() -> None:
    """Register the section (called from ``ChainConfig.ready``)."""
    from core.mydata import register_section

    register_section("chain", chain_section)
