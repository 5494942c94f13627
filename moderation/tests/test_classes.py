"""Automatic class promotion and demotion: the pure ladder rule, the bulk service (driven by
the ledger and the clock), the beat task, and what it must never touch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, NotPermitted
from core.models import AuditLog, Notification
from moderation.models import ClassLock
from moderation.rules import ClassRule, earned_class, next_class, parse_rules
from moderation.services.classes import class_lock_clear, class_lock_set, class_rules_apply
from moderation.tasks import CLASS_RULES_LOCK, apply_class_rules
from reputation.models import Ledger
from tracker.models import Member, MemberClass
from tracker.tests.factories import MemberFactory

GIB = 1024**3
RULES = [
    ClassRule("power_user", 25 * GIB, 1.05, 28, 0.95),
    ClassRule("elite", 100 * GIB, 1.5, 91, 1.3),
]
NOW = timezone.now()


def _member(*, uploaded: int, downloaded: int, age_days: int, member_class: str = "user", **kw):
    member = MemberFactory(**kw)
    Ledger.objects.filter(member=member).update(uploaded=uploaded, downloaded=downloaded)
    Member.objects.filter(pk=member.pk).update(
        member_class=member_class, date_joined=NOW - timedelta(days=age_days)
    )
    member.refresh_from_db()
    return member


# --- The pure rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uploaded", "downloaded", "age", "expected"),
    [
        (25 * GIB, 20 * GIB, 28, "power_user"),  # ratio 1.25
        (25 * GIB - 1, 1, 365, "user"),  # upload short by one byte
        (25 * GIB, 24 * GIB, 365, "user"),  # ratio 1.04 < 1.05
        (25 * GIB, 0, 27.9, "user"),  # too young
        (25 * GIB, 0, 28, "power_user"),  # nothing downloaded: infinite ratio
        (100 * GIB, 60 * GIB, 91, "elite"),
        (100 * GIB, 90 * GIB, 400, "power_user"),  # ratio 1.11: elite's 1.5 not met
        (100 * GIB, 10 * GIB, 90, "power_user"),  # elite's age not met
    ],
)
def test_earned_class(uploaded, downloaded, age, expected):
    assert (
        earned_class(rules=RULES, uploaded=uploaded, downloaded=downloaded, age_days=age)
        == expected
    )


def test_demotion_only_below_the_floor():
    figures = {"uploaded": 30 * GIB, "age_days": 100}
    # 1.0 is below power_user's 1.05 but above its 0.95 floor: kept.
    assert next_class(rules=RULES, current="power_user", downloaded=30 * GIB, **figures) == (
        "power_user"
    )
    # 0.9 is below the floor: back to user.
    assert next_class(rules=RULES, current="power_user", downloaded=34 * GIB, **figures) == "user"
    # Elite below its floor drops to the highest class still earned.
    assert (
        next_class(
            rules=RULES, current="elite", uploaded=120 * GIB, downloaded=100 * GIB, age_days=400
        )
        == "power_user"
    )


def test_classes_outside_the_ladder_are_never_changed():
    for staff_class in ("vip", "uploader"):
        assert (
            next_class(rules=RULES, current=staff_class, uploaded=0, downloaded=GIB, age_days=0)
            == staff_class
        )
        assert (
            next_class(
                rules=RULES, current=staff_class, uploaded=500 * GIB, downloaded=1, age_days=999
            )
            == staff_class
        )


@pytest.mark.parametrize(
    "raw",
    [
        [{"class": "vipp"}],
        [{"class": "user"}],
        [{"class": "elite"}, {"class": "elite"}],
        [{"class": "elite", "min_ratio": 1.0, "demote_ratio": 1.2}],
        [{"class": "elite", "min_uploaded": -1}],
    ],
)
def test_malformed_rules_are_refused(raw):
    with pytest.raises(ValueError):
        parse_rules(raw, known_classes=MemberClass.values)


# --- The bulk service -----------------------------------------------------------------------


@pytest.mark.django_db
def test_promotion_and_demotion_in_bulk_idempotent_audited_notified():
    riser = _member(uploaded=30 * GIB, downloaded=20 * GIB, age_days=40)
    star = _member(uploaded=200 * GIB, downloaded=100 * GIB, age_days=200)
    faller = _member(
        uploaded=30 * GIB, downloaded=40 * GIB, age_days=200, member_class="power_user"
    )
    keeper = _member(
        uploaded=30 * GIB, downloaded=31 * GIB, age_days=200, member_class="power_user"
    )
    newcomer = _member(uploaded=30 * GIB, downloaded=1, age_days=3)
    changed = class_rules_apply(now=NOW)
    assert changed == {("user", "power_user"): 1, ("user", "elite"): 1, ("power_user", "user"): 1}
    classes = dict(Member.objects.values_list("pk", "member_class"))
    assert classes[riser.pk] == "power_user"
    assert classes[star.pk] == "elite"
    assert classes[faller.pk] == "user"
    assert classes[keeper.pk] == "power_user"
    assert classes[newcomer.pk] == "user"
    audits = AuditLog.objects.filter(action="member_class_auto")
    assert audits.count() == 3 and all(a.actor_id is None for a in audits)
    assert Notification.objects.get(member=riser).kind == "class_promoted"
    assert Notification.objects.get(member=faller).kind == "class_demoted"
    # A second run changes nothing and writes nothing.
    assert class_rules_apply(now=NOW) == {}
    assert AuditLog.objects.filter(action="member_class_auto").count() == 3
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_the_clock_promotes_a_member_once_old_enough():
    member = _member(uploaded=30 * GIB, downloaded=GIB, age_days=20)
    assert class_rules_apply(now=NOW) == {}
    assert class_rules_apply(now=NOW + timedelta(days=8)) == {("user", "power_user"): 1}
    member.refresh_from_db()
    assert member.member_class == "power_user"


@pytest.mark.django_db
def test_upload_bought_with_bonus_points_counts_like_the_sites_ratio_rule():
    # 20 GiB announced + 10 GiB bought: 30 GiB for a ratio of 1.5 (the site's ratio rule).
    member = _member(uploaded=20 * GIB, downloaded=20 * GIB, age_days=60)
    assert class_rules_apply(now=NOW) == {}
    Ledger.objects.filter(member=member).update(bonus_uploaded=10 * GIB)
    assert class_rules_apply(now=NOW) == {("user", "power_user"): 1}


@pytest.mark.django_db
def test_promotion_never_touches_staff_classes_staff_banned_or_locked_members():
    rich = {"uploaded": 500 * GIB, "downloaded": GIB, "age_days": 500}
    poor = {"uploaded": 0, "downloaded": 500 * GIB, "age_days": 500}
    vip = _member(member_class="vip", **poor)
    uploader = _member(member_class="uploader", **rich)
    moderator = _member(is_staff=True, **rich)
    owner = MemberFactory(is_staff=True, is_superuser=True)
    locked_user = _member(**rich)
    locked_elite = _member(member_class="elite", **poor)
    ClassLock.objects.create(member=locked_user, locked_by=owner)
    ClassLock.objects.create(member=locked_elite, locked_by=owner)
    banned = _member(**rich)
    Member.objects.filter(pk=banned.pk).update(is_banned=True)
    assert class_rules_apply(now=NOW) == {}
    classes = dict(Member.objects.values_list("pk", "member_class"))
    assert classes[vip.pk] == "vip"
    assert classes[uploader.pk] == "uploader"
    assert classes[moderator.pk] == "user"
    assert classes[locked_user.pk] == "user"
    assert classes[locked_elite.pk] == "elite"
    assert classes[banned.pk] == "user"


@pytest.mark.django_db
def test_rules_come_from_the_setting(settings):
    settings.PBTS_CLASS_RULES = [{"class": "power_user", "min_uploaded": GIB, "min_ratio": 0}]
    member = _member(uploaded=GIB, downloaded=100 * GIB, age_days=0)
    assert class_rules_apply(now=NOW) == {("user", "power_user"): 1}
    member.refresh_from_db()
    assert member.member_class == "power_user"


@pytest.mark.django_db
def test_the_beat_task_applies_the_rules_once_at_a_time():
    from django.core.cache import cache

    member = _member(uploaded=30 * GIB, downloaded=GIB, age_days=40)
    cache.add(CLASS_RULES_LOCK, 1, timeout=60)
    assert apply_class_rules() == 0
    cache.delete(CLASS_RULES_LOCK)
    assert apply_class_rules() == 1
    assert apply_class_rules() == 0
    member.refresh_from_db()
    assert member.member_class == "power_user"


@pytest.mark.django_db
def test_class_locks_need_a_moderator_of_higher_rank():
    staff = MemberFactory(is_staff=True)
    member = MemberFactory()
    with pytest.raises(NotPermitted):
        class_lock_set(member=MemberFactory(), actor=member)
    with pytest.raises(NotPermitted):
        class_lock_set(member=staff, actor=staff)
    class_lock_set(member=member, actor=staff, reason="Kept by hand.")
    with pytest.raises(Conflict):
        class_lock_set(member=member, actor=staff)
    class_lock_clear(member=member, actor=staff)
    with pytest.raises(Conflict):
        class_lock_clear(member=member, actor=staff)
    assert set(AuditLog.objects.values_list("action", flat=True)) >= {"class_lock", "class_unlock"}
