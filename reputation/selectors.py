"""Read-side rules on the ledger, shared by every admin list and report."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db.models import Case, DecimalField, Expression, F, Q, Value, When
from django.db.models.functions import Cast, Floor, Least
from django.db.models.lookups import GreaterThan, LessThan

from reputation.models import BonusAccount, BonusTransaction, Ledger
from reputation.policy import ImportedPolicy, site_figures

NUMERIC = DecimalField(max_digits=38, decimal_places=0)


def imported_policy() -> ImportedPolicy:
    """The import policy from settings (``PBTS_IMPORTED_UPLOAD_COUNTS``,
    ``PBTS_IMPORTED_DOWNLOAD_COUNTS``, ``PBTS_IMPORTED_UPLOAD_CAP_BYTES``; docs/chain.md)."""
    return ImportedPolicy(
        upload_counts=settings.PBTS_IMPORTED_UPLOAD_COUNTS,
        download_counts=settings.PBTS_IMPORTED_DOWNLOAD_COUNTS,
        upload_cap_bytes=max(int(settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES), 0),
    )


def ledger_site_figures(ledger: Ledger | None) -> tuple[int, int]:
    """``(uploaded, downloaded)`` in bytes the ratio rule counts for a ledger row
    (``reputation.policy.site_figures`` under :func:`imported_policy`); ``(0, 0)`` for none."""
    if ledger is None:
        return 0, 0
    return site_figures(
        uploaded=ledger.uploaded,
        downloaded=ledger.downloaded,
        bonus_uploaded=ledger.bonus_uploaded,
        imported_uploaded=ledger.imported_uploaded,
        imported_downloaded=ledger.imported_downloaded,
        imported=imported_policy(),
    )


def site_figures_sql(*, prefix: str = "") -> tuple[Expression, Expression]:
    """``reputation.policy.site_figures`` as SQL expressions ``(uploaded, downloaded)`` over
    ledger columns (``prefix``: ``""`` on ``Ledger``, ``"ledger__"`` through a member); the
    download is NUMERIC (the cap's scaling is exact, no bigint overflow)."""
    imp = imported_policy()

    def col(name: str) -> F:
        return F(f"{prefix}{name}")

    up = col("uploaded") + col("bonus_uploaded")
    down = Cast(col("downloaded"), NUMERIC)
    cap = imp.upload_cap_bytes
    if imp.upload_counts:
        up = up + (Least(col("imported_uploaded"), Value(cap)) if cap else col("imported_uploaded"))
    if imp.download_counts:
        imported_down = Cast(col("imported_downloaded"), NUMERIC)
        if cap:
            imported_down = Case(
                When(
                    **{f"{prefix}imported_uploaded__gt": cap},
                    then=Floor(imported_down * Value(cap) / col("imported_uploaded")),
                ),
                default=imported_down,
                output_field=NUMERIC,
            )
        down = down + imported_down
    return up, down


def _settings_thresholds() -> tuple[float, int]:
    return settings.MIN_RATIO, settings.PBTS_RATIO_GRACE_BYTES


#: Where the ratio rule's thresholds come from: ``() -> (min_ratio, grace_bytes)``. Settings
#: by default; the tracker app, which owns the values staff change at run time (``/config``,
#: ``tracker.runtime_config``), installs its reader in its ``ready()``.
ratio_thresholds: Callable[[], tuple[float, int]] = _settings_thresholds


def below_min_ratio(*, on: Literal["ledger", "member"] = "ledger") -> Q:
    """Members the ratio rule refuses to leech (``reputation.policy.leech_verdict``): past the
    grace allowance (bytes downloaded) with uploaded / downloaded below the minimum ratio (both
    as :data:`ratio_thresholds` gives them: ``MIN_RATIO`` and ``PBTS_RATIO_GRACE_BYTES``, or
    the values staff set at run time), figures as ``reputation.policy.site_figures`` counts
    them (bonus and imported figures included per the import policy), and not ratio-exempt.

    Args:
        on: the queryset's model: ``"ledger"`` (``reputation.Ledger``) or ``"member"`` (the
            member model, through its ``ledger``).
    """
    ledger, member = ("", "member__") if on == "ledger" else ("ledger__", "")
    up, down = site_figures_sql(prefix=ledger)
    min_ratio, grace_bytes = ratio_thresholds()
    return (
        Q(**{f"{member}is_ratio_exempt": False})
        & Q(GreaterThan(down, Value(grace_bytes)))
        & Q(LessThan(up, down * Value(Decimal(str(min_ratio)))))
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
