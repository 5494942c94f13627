"""Which members wait for a push: the ledger compared with what the contract holds.

A read with no service import, so both the push service and the selectors use it.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from chain.models import OPEN_TX, Migration, MigrationStatus, PushItem
from receipts.models import BLSKey
from reputation.models import Ledger


def ledgers_waiting_for_push(*, member_ids: list[int] | None = None) -> QuerySet[Ledger]:
    """Ledgers whose chain figures differ from what the contract holds, oldest change first.

    A member's chain figures are the ledger's imported + verified bytes. They wait for a push
    when the member has an on-chain record that was never pushed or holds other figures, or
    has no record yet but an active BLS key and figures above zero; and is not blocked, and is
    in no open push batch or migration. Nothing marks a ledger: the comparison is the rule, so
    a change made while a batch is in flight is simply pushed next time.
    """
    up = F("imported_uploaded") + F("verified_uploaded")
    down = F("imported_downloaded") + F("verified_downloaded")
    record = "member__chain_record__"
    differs = (
        Q(**{f"{record}pushed_at__isnull": True})
        | Q(**{f"{record}pushed_uploaded__lt": up})
        | Q(**{f"{record}pushed_uploaded__gt": up})
        | Q(**{f"{record}pushed_downloaded__lt": down})
        | Q(**{f"{record}pushed_downloaded__gt": down})
    )
    has_key = BLSKey.objects.filter(member_id=OuterRef("member_id"), revoked_at__isnull=True)
    new_record = (
        Q(**{f"{record}isnull": True})
        & Exists(has_key)
        & (
            Q(imported_uploaded__gt=0)
            | Q(imported_downloaded__gt=0)
            | Q(verified_uploaded__gt=0)
            | Q(verified_downloaded__gt=0)
        )
    )
    known = Q(**{f"{record}isnull": False, f"{record}is_blocked": False}) & differs
    in_open_batch = PushItem.objects.filter(
        member_id=OuterRef("member_id"), batch__tx_status__in=OPEN_TX
    )
    in_migration = Migration.objects.filter(
        member_id=OuterRef("member_id"),
        status__in=[MigrationStatus.QUEUED, MigrationStatus.PENDING, MigrationStatus.SENT],
    )
    query = (
        Ledger.objects.filter(known | new_record)
        .exclude(Exists(in_open_batch))
        .exclude(Exists(in_migration))
    )
    if member_ids is not None:
        query = query.filter(member_id__in=member_ids)
    return query.order_by("updated_at", "member_id")
