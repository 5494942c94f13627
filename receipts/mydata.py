"""The receipts section of "Export my data" (``core.mydata``): BLS public keys and counts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum

from receipts.models import BLSKey, Receipt, Report


def receipts_section(member: Any) -> dict[str, Any]:
    """The member's BLS public keys (hex; public by nature) and how many receipts and reports
    name them, by status."""
    keys = [
        {
            "public_key": bytes(key.public_key).hex(),
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
            "revoke_reason": key.revoke_reason,
        }
        for key in BLSKey.objects.filter(member=member).order_by("created_at", "id")
    ]
    reports = Report.objects.filter(reporter=member).aggregate(
        count=Count("id"), credited_bytes=Sum("credited_bytes")
    )

    def by_status(**where: Any) -> dict[str, int]:
        rows = Receipt.objects.filter(**where).values("status").annotate(n=Count("id"))
        return {row["status"]: row["n"] for row in rows}

    return {
        "keys": keys,
        "reports": {
            "count": reports["count"],
            "credited_bytes": reports["credited_bytes"] or 0,
        },
        "receipts_as_uploader": by_status(uploader=member),
        "receipts_as_downloader": by_status(downloader=member),
    }


def register() -> None:
    """Register the section (called from ``ReceiptsConfig.ready``)."""
    from core.mydata import register_section

    register_section("receipts", receipts_section)
