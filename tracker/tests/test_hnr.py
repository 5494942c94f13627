"""The hit-and-run rule (tracker.services.hnr) with a driven clock: states, exemptions,
thresholds, the download switch in the announce path, forgiveness, and attacks on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from core.errors import Conflict, NotPermitted
from core.models import AuditLog, Notification
from tracker import authcache
from tracker.models import (
    HitAndRun,
    HitAndRunState,
    Member,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services import members as member_services
from tracker.services.hnr import HnrRule, hnr_evaluate, hnr_forgive
from tracker.tasks import evaluate_hit_and_runs
from tracker.tests.factories import MemberFactory
from tracker.tests.test_announce import Clock, announce, clock  # noqa: F401 (fixture)
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SIZE = 100_000
RULE = HnrRule(
    seed_seconds=72 * 3600,
    ratio=1.0,
    window=timedelta(days=14),
    grace=timedelta(hours=2),
    warn_after=1,
    disable_after=2,
)
AFTER = T0 + RULE.window + RULE.grace  # the first moment an unmet snatch is a hit-and-run


@pytest.fixture
def uploader() -> Member:
    return MemberFactory()


def snatch(member: Member, torrent: Torrent, **figures) -> TorrentHistory:
    """A completed download at T0 with the given figures (bytes, seconds)."""
    return TorrentHistory.objects.create(member=member, torrent=torrent, completed_at=T0, **figures)


def state(history: TorrentHistory) -> str:
    return HitAndRun.objects.get(history=history).state


def fresh(member: Member) -> Member:
    return Member.objects.get(pk=member.pk)


# --- the rule ---------------------------------------------------------------------------


def test_unmet_snatch_is_pending_in_the_window_and_grace_then_a_hit_and_run(uploader):
    member = MemberFactory()
    history = snatch(member, upload_torrent(uploader, size=SIZE), downloaded=SIZE)
    hnr_evaluate(now=T0 + timedelta(days=1), rule=RULE)
    assert state(history) == HitAndRunState.PENDING
    hnr_evaluate(now=T0 + RULE.window + timedelta(hours=1), rule=RULE)  # window over, grace on
    assert state(history) == HitAndRunState.PENDING
    assert fresh(member).hnr_count == 0
    run = hnr_evaluate(now=AFTER, rule=RULE)
    assert state(history) == HitAndRunState.HIT_AND_RUN and run.changed == 1
    assert fresh(member).hnr_count == 1


def test_snatch_seeded_for_the_hours_is_satisfied_at_once(uploader):
    member = MemberFactory()
    torrent = upload_torrent(uploader, size=SIZE)
    short = snatch(member, torrent, downloaded=SIZE, seed_seconds=72 * 3600 - 1)
    enough = snatch(MemberFactory(), torrent, downloaded=SIZE, seed_seconds=72 * 3600)
    hnr_evaluate(now=T0 + timedelta(days=3), rule=RULE)
    assert state(enough) == HitAndRunState.SATISFIED
    assert state(short) == HitAndRunState.PENDING
    hnr_evaluate(now=AFTER, rule=RULE)
    assert state(short) == HitAndRunState.HIT_AND_RUN


def test_snatch_shared_back_to_the_ratio_is_satisfied(uploader):
    torrent = upload_torrent(uploader, size=SIZE)
    below = snatch(MemberFactory(), torrent, downloaded=SIZE, uploaded=SIZE - 1)
    met = snatch(MemberFactory(), torrent, downloaded=SIZE, uploaded=SIZE)
    hnr_evaluate(now=AFTER, rule=RULE)
    assert state(met) == HitAndRunState.SATISFIED
    assert state(below) == HitAndRunState.HIT_AND_RUN


def test_ratio_is_measured_against_the_size_when_little_was_downloaded(uploader):
    """A freeleech snatch records no download: 1 byte uploaded must not meet the ratio."""
    torrent = upload_torrent(uploader, size=SIZE)
    Torrent.objects.filter(pk=torrent.pk).update(is_freeleech=True)
    one_byte = snatch(MemberFactory(), torrent, downloaded=0, uploaded=1)
    hnr_evaluate(now=AFTER, rule=RULE)
    assert state(one_byte) == HitAndRunState.HIT_AND_RUN  # freeleech is not exempt


def test_uploader_ratio_exempt_members_and_removed_torrents_are_exempt(uploader):
    torrent = upload_torrent(uploader, size=SIZE)
    own = snatch(uploader, torrent)
    exempt_member = MemberFactory()
    Member.objects.filter(pk=exempt_member.pk).update(is_ratio_exempt=True)
    exempt = snatch(exempt_member, torrent)
    removed_torrent = upload_torrent(uploader, size=SIZE)
    Torrent.objects.filter(pk=removed_torrent.pk).update(status=TorrentStatus.REJECTED)
    removed = snatch(MemberFactory(), removed_torrent)
    counted = snatch(MemberFactory(), torrent)
    hnr_evaluate(now=AFTER, rule=RULE)
    assert {state(h) for h in (own, exempt, removed)} == {HitAndRunState.EXEMPT}
    assert state(counted) == HitAndRunState.HIT_AND_RUN
    assert fresh(uploader).hnr_count == fresh(exempt_member).hnr_count == 0


def test_unfinished_downloads_are_not_tracked(uploader):
    member = MemberFactory()
    TorrentHistory.objects.create(
        member=member, torrent=upload_torrent(uploader, size=SIZE), downloaded=10
    )
    assert hnr_evaluate(now=AFTER, rule=RULE).tracked == 0
    assert not HitAndRun.objects.exists()


def test_settings_drive_the_rule_through_the_beat_task(uploader):
    member = MemberFactory()
    history = snatch(member, upload_torrent(uploader, size=SIZE))
    with override_settings(PBTS_HNR_WINDOW_DAYS=0, PBTS_HNR_GRACE_HOURS=0):
        assert evaluate_hit_and_runs() == 1  # now is long after T0: over at once
    assert state(history) == HitAndRunState.HIT_AND_RUN
    with override_settings(PBTS_HNR_ENABLED=False):
        HitAndRun.objects.all().delete()
        assert evaluate_hit_and_runs() == 0
        assert not HitAndRun.objects.exists()


# --- thresholds -------------------------------------------------------------------------


def test_warned_at_n_disabled_at_m_and_lifted_when_a_hit_and_run_is_seeded(uploader):
    member = MemberFactory()
    first = snatch(member, upload_torrent(uploader, size=SIZE))
    run = hnr_evaluate(now=AFTER, rule=RULE)
    assert run.warned == [member.pk] and run.disabled == []
    warnings = Notification.objects.filter(member=member, kind="hnr")
    assert warnings.count() == 1 and "warning" in warnings.get().subject.lower()
    assert not fresh(member).hnr_disabled

    snatch(member, upload_torrent(uploader, size=SIZE))
    run = hnr_evaluate(now=AFTER, rule=RULE)
    assert run.disabled == [member.pk] and run.warned == []
    member = fresh(member)
    assert (member.hnr_count, member.hnr_disabled, member.can_download) == (2, True, True)
    assert authcache.member_standing(member.passkey).hnr_disabled is True
    assert AuditLog.objects.filter(action="hnr_download_disabled", target_id=str(member.pk))

    # The member seeds the first one late: it becomes satisfied and the switch is lifted.
    TorrentHistory.objects.filter(pk=first.pk).update(seed_seconds=72 * 3600)
    run = hnr_evaluate(now=AFTER + timedelta(days=3), rule=RULE)
    assert state(first) == HitAndRunState.SATISFIED and run.lifted == [member.pk]
    member = fresh(member)
    assert (member.hnr_count, member.hnr_disabled) == (1, False)
    assert authcache.member_standing(member.passkey).hnr_disabled is False
    assert Notification.objects.filter(member=member, subject="Downloading enabled again")


def test_evaluation_twice_changes_nothing_the_second_time(uploader):
    member = MemberFactory()
    for _ in range(2):
        snatch(member, upload_torrent(uploader, size=SIZE))
    hnr_evaluate(now=AFTER, rule=RULE)
    notes, audits = Notification.objects.count(), AuditLog.objects.count()
    run = hnr_evaluate(now=AFTER, rule=RULE)
    assert (run.tracked, run.changed, run.warned, run.disabled, run.lifted) == (0, 0, [], [], [])
    assert (Notification.objects.count(), AuditLog.objects.count()) == (notes, audits)
    assert fresh(member).hnr_count == 2


def test_staff_disabled_member_stays_disabled_when_hit_and_runs_are_lifted(uploader):
    member = MemberFactory()
    staff = MemberFactory(is_staff=True)
    rows = [snatch(member, upload_torrent(uploader, size=SIZE)) for _ in range(2)]
    hnr_evaluate(now=AFTER, rule=RULE)
    member_services.member_set_downloading(
        member=fresh(member), actor=staff, enabled=False, reason="abuse"
    )
    TorrentHistory.objects.filter(pk__in=[r.pk for r in rows]).update(seed_seconds=10**6)
    run = hnr_evaluate(now=AFTER + timedelta(days=1), rule=RULE)
    assert run.lifted == [member.pk]
    member = fresh(member)
    assert (member.hnr_count, member.hnr_disabled, member.can_download) == (0, False, False)
    standing = authcache.member_standing(member.passkey)
    assert (standing.hnr_disabled, standing.can_download) == (False, False)


# --- forgiveness --------------------------------------------------------------------------


def test_staff_forgive_a_hit_and_run_audited_and_the_switch_is_lifted(uploader):
    member, staff = MemberFactory(), MemberFactory(is_staff=True)
    rows = [snatch(member, upload_torrent(uploader, size=SIZE)) for _ in range(2)]
    hnr_evaluate(now=AFTER, rule=RULE)
    assert fresh(member).hnr_disabled
    row = HitAndRun.objects.get(history=rows[0])
    with override_settings(PBTS_HNR_DISABLE_AFTER=2):
        hnr_forgive(hit_and_run=row, actor=staff, reason="tracker outage")
    row.refresh_from_db()
    assert (row.state, row.forgiven_by, row.forgive_reason) == (
        HitAndRunState.FORGIVEN,
        staff,
        "tracker outage",
    )
    member = fresh(member)
    assert (member.hnr_count, member.hnr_disabled) == (1, False)
    audit = AuditLog.objects.get(action="hnr_forgive")
    assert (audit.actor, audit.reason, audit.new_values) == (
        staff,
        "tracker outage",
        {"state": "forgiven"},
    )
    # Forgiven stays forgiven: the next run does not judge it again.
    hnr_evaluate(now=AFTER + timedelta(days=30), rule=RULE)
    row.refresh_from_db()
    assert row.state == HitAndRunState.FORGIVEN and fresh(member).hnr_count == 1
    with pytest.raises(Conflict):
        hnr_forgive(hit_and_run=row, actor=staff)


def test_a_member_cannot_forgive_their_own_or_anyone_elses(uploader):
    member, other = MemberFactory(), MemberFactory()
    staff = MemberFactory(is_staff=True)
    snatch(member, upload_torrent(uploader, size=SIZE))
    snatch(staff, upload_torrent(uploader, size=SIZE))
    hnr_evaluate(now=AFTER, rule=RULE)
    own = HitAndRun.objects.get(member=member)
    staff_own = HitAndRun.objects.get(member=staff)
    for actor, row in ((member, own), (other, own), (staff, staff_own)):
        with pytest.raises(NotPermitted):
            hnr_forgive(hit_and_run=row, actor=actor)
    assert set(HitAndRun.objects.values_list("state", flat=True)) == {HitAndRunState.HIT_AND_RUN}
    assert not AuditLog.objects.filter(action="hnr_forgive").exists()


# --- the announce path --------------------------------------------------------------------


@pytest.fixture
def announce_swarm(clock):  # noqa: F811 (the clock fixture)
    from tracker.models import ClientPrefix

    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    uploader = MemberFactory()
    return uploader, upload_torrent(uploader, size=SIZE)


def test_hnr_disabled_member_is_refused_leeching_but_may_seed(client, announce_swarm):
    uploader, torrent = announce_swarm
    member = MemberFactory()
    for _ in range(2):
        snatch(member, upload_torrent(uploader, size=SIZE))
    assert (
        announce(client, member, torrent, left=10, peer=b"-TR4060-before").get(b"failure reason")
        is None
    )
    hnr_evaluate(now=AFTER, rule=RULE)
    reply = announce(client, member, torrent, left=10, peer=b"-TR4060-leech")
    assert b"hit-and-runs" in reply[b"failure reason"]
    assert b"seeding still works" in reply[b"failure reason"]
    seeding = announce(client, member, torrent, left=0, peer=b"-TR4060-seed")
    assert b"failure reason" not in seeding and b"interval" in seeding


# --- bulk ----------------------------------------------------------------------------------


def test_evaluation_query_count_does_not_grow_with_the_snatches(
    uploader, django_assert_max_num_queries
):
    torrents = [upload_torrent(uploader, size=SIZE) for _ in range(3)]
    members = [MemberFactory() for _ in range(15)]
    TorrentHistory.objects.bulk_create(
        TorrentHistory(member=m, torrent=t, completed_at=T0, seed_seconds=(i % 2) * 10**6)
        for i, (m, t) in enumerate((m, t) for m in members for t in torrents)
    )
    quiet = HnrRule(RULE.seed_seconds, RULE.ratio, RULE.window, RULE.grace, 0, 0)
    with django_assert_max_num_queries(8):
        run = hnr_evaluate(now=AFTER, rule=quiet)
    assert run.tracked == 45 and run.changed == 45
    counts = set(Member.objects.filter(pk__in=[m.pk for m in members]).values_list("hnr_count"))
    assert counts == {(1,), (2,)}
    with django_assert_max_num_queries(8):
        assert hnr_evaluate(now=AFTER, rule=quiet).changed == 0


# --- admin ---------------------------------------------------------------------------------


def test_admin_lists_and_forgives_with_a_reason(uploader):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.test import Client
    from django.urls import reverse

    member = MemberFactory()
    snatch(member, upload_torrent(uploader, size=SIZE, name="admin-listed.bin"))
    hnr_evaluate(now=AFTER, rule=RULE)
    row = HitAndRun.objects.get(member=member)
    staff = Client()
    staff.force_login(MemberFactory(is_staff=True))
    url = reverse("admin:tracker_hitandrun_changelist")
    listed = staff.get(url)
    assert listed.status_code == 200 and b"admin-listed.bin" in listed.content
    done = staff.post(
        url,
        {
            "action": "forgive",
            "apply": "yes",
            "reason": "seeded elsewhere",
            ACTION_CHECKBOX_NAME: [str(row.pk)],
        },
    )
    assert done.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.forgive_reason) == (HitAndRunState.FORGIVEN, "seeded elsewhere")
    assert staff.get(reverse("admin:tracker_hitandrun_add")).status_code == 403
