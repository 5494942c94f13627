"""Automatic class promotion and demotion, and the class locks that keep staff's manual
choices.

The ladder is ``user`` then the rungs of ``PBTS_CLASS_RULES`` (``moderation.rules``). Only a
member holding a ladder class is ever changed, so staff classes (``uploader``, ``vip``, any
class not on the ladder) never are; nor are staff accounts, banned members and members with a
:class:`~moderation.models.ClassLock` (staff set one to keep a class they chose by hand).
Upload and ratio are the ones the site's ratio rule uses (``reputation.policy.site_figures``:
announced upload plus upload bought with bonus points plus imported figures per the import
policy, docs/chain.md), the ratio of ``reputation.policy.ratio``; age from ``date_joined``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict
from core.notifications import notify
from moderation.models import ClassLock
from moderation.rules import ClassRule, ladder, next_class, parse_rules
from moderation.services._common import REASON_MAX_CHARS, clean_text
from reputation.policy import site_figures
from reputation.selectors import imported_policy
from tracker.models import Member, MemberClass
from tracker.services.members import moderation_check


def class_rules() -> list[ClassRule]:
    """The ladder's rungs from ``PBTS_CLASS_RULES`` (``ValueError`` when malformed)."""
    return parse_rules(settings.PBTS_CLASS_RULES, known_classes=MemberClass.values)


def class_rules_apply(*, now: datetime | None = None) -> dict[tuple[str, str], int]:
    """Apply the class rules to every member they govern, in bulk; idempotent (a second run
    changes nothing). Each change is a conditional UPDATE on the class read (a concurrent
    staff change wins), audited as ``member_class_auto`` (actor: the system) and notified.

    Args:
        now: the clock (tests drive it); default ``timezone.now()``.

    Returns:
        ``{(old class, new class): members changed}``.
    """
    now = now or timezone.now()
    rules = class_rules()
    rows = (
        Member.objects.filter(
            member_class__in=ladder(rules),
            is_staff=False,
            is_superuser=False,
            is_banned=False,
            is_active=True,
            class_lock__isnull=True,
        )
        .values_list(
            "pk",
            "member_class",
            "date_joined",
            "ledger__uploaded",
            "ledger__bonus_uploaded",
            "ledger__downloaded",
            "ledger__imported_uploaded",
            "ledger__imported_downloaded",
        )
        .order_by("pk")
    )
    moves: dict[tuple[str, str], list[int]] = defaultdict(list)
    imported = imported_policy()
    for pk, current, joined, up, bonus, down, imp_up, imp_down in rows.iterator(chunk_size=2000):
        uploaded, downloaded = site_figures(
            uploaded=up or 0,
            downloaded=down or 0,
            bonus_uploaded=bonus or 0,
            imported_uploaded=imp_up or 0,
            imported_downloaded=imp_down or 0,
            imported=imported,
        )
        target = next_class(
            rules=rules,
            current=current,
            uploaded=uploaded,
            downloaded=downloaded,
            age_days=(now - joined).total_seconds() / 86400,
        )
        if target != current:
            moves[(current, target)].append(pk)
    done: dict[tuple[str, str], int] = {}
    order = ladder(rules)
    for (old, new), pks in moves.items():
        done[(old, new)] = _move(
            pks, old=old, new=new, promoted=order.index(new) > order.index(old)
        )
    return done


def _move(pks: list[int], *, old: str, new: str, promoted: bool) -> int:
    label = MemberClass(new).label
    moved = 0
    for start in range(0, len(pks), 500):
        with transaction.atomic():
            members = list(
                Member.objects.select_for_update(of=("self",))
                .filter(pk__in=pks[start : start + 500], member_class=old, class_lock__isnull=True)
                .order_by("pk")
            )
            Member.objects.filter(pk__in=[m.pk for m in members]).update(
                member_class=new, updated_at=timezone.now()
            )
            for member in members:
                audit_record(
                    actor=None,
                    action="member_class_auto",
                    target=member,
                    old={"member_class": old},
                    new={"member_class": new},
                    reason="class rules (PBTS_CLASS_RULES)",
                )
                notify(
                    member=member,
                    kind="class_promoted" if promoted else "class_demoted",
                    subject=(
                        f"You were promoted to {label}"
                        if promoted
                        else f"Your class is now {label}: your ratio fell below the floor"
                    ),
                    url=reverse("profile"),
                )
            moved += len(members)
    return moved


@transaction.atomic
def class_lock_set(*, member: Member, actor: Member, reason: str = "") -> ClassLock:
    """Keep ``member``'s class out of the automatic rules; audited as ``class_lock``.

    Raises:
        NotPermitted: ``moderation_check`` refuses.
        InvalidInput: a too long reason (field ``reason``).
        Conflict: the member's class is already locked.
    """
    moderation_check(actor=actor, member=member)
    reason = clean_text(reason, field="reason", limit=REASON_MAX_CHARS, required=False)
    lock, created = ClassLock.objects.get_or_create(
        member=member, defaults={"locked_by": actor, "reason": reason}
    )
    if not created:
        raise Conflict("This member's class is already locked.")
    audit_record(
        actor=actor,
        action="class_lock",
        target=member,
        new={"member_class": member.member_class},
        reason=reason,
    )
    return lock


@transaction.atomic
def class_lock_clear(*, member: Member, actor: Member, reason: str = "") -> None:
    """Give ``member``'s class back to the automatic rules; audited as ``class_unlock``.

    Raises:
        NotPermitted: ``moderation_check`` refuses.
        Conflict: the member's class is not locked.
    """
    moderation_check(actor=actor, member=member)
    reason = clean_text(reason, field="reason", limit=REASON_MAX_CHARS, required=False)
    deleted, _ = ClassLock.objects.filter(member=member).delete()
    if not deleted:
        raise Conflict("This member's class is not locked.")
    audit_record(actor=actor, action="class_unlock", target=member, reason=reason)
