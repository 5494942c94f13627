"""Moderation services: reports, warnings, notes, class locks and the upload approval modes,
with the attacks on each rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, NotPermitted
from core.models import AuditLog, Notification
from moderation.models import MemberWarning, Report, ReportStatus, StaffNote
from moderation.selectors import member_notes, member_warnings, warning_state
from moderation.services.notes import note_add
from moderation.services.reports import report_claim, report_close, report_create
from moderation.services.warnings import warning_issue, warning_revoke
from tracker.models import Member, TorrentStatus
from tracker.services.members import member_ban
from tracker.services.torrents import upload_status
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


@pytest.fixture
def torrent(staff):
    return upload_torrent(staff, name="Some.Linux.ISO")


def _report(reporter, **target):
    return report_create(reporter=reporter, category="fake", text="It is a fake.", **target)


# --- Upload approval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "legacy", "member_class", "is_staff", "expected"),
    [
        ("auto", False, "user", False, TorrentStatus.APPROVED),
        ("staff", False, "uploader", False, TorrentStatus.PENDING),
        ("staff", False, "user", True, TorrentStatus.PENDING),
        ("trusted", False, "user", False, TorrentStatus.PENDING),
        ("trusted", False, "power_user", False, TorrentStatus.PENDING),
        ("trusted", False, "uploader", False, TorrentStatus.APPROVED),
        ("trusted", False, "vip", False, TorrentStatus.APPROVED),
        ("trusted", False, "user", True, TorrentStatus.APPROVED),
        # The old switch is an alias of "staff" and wins over "auto".
        ("auto", True, "uploader", False, TorrentStatus.PENDING),
        ("trusted", True, "vip", False, TorrentStatus.APPROVED),
    ],
)
def test_upload_approval_modes(settings, mode, legacy, member_class, is_staff, expected):
    settings.PBTS_UPLOAD_APPROVAL = mode
    settings.PBTS_UPLOADS_NEED_APPROVAL = legacy
    uploader = MemberFactory(is_staff=is_staff)
    Member.objects.filter(pk=uploader.pk).update(member_class=member_class)
    uploader.refresh_from_db()
    assert upload_status(uploader) == expected
    assert upload_torrent(uploader).status == expected


def test_trusted_classes_come_from_the_setting(settings):
    settings.PBTS_UPLOAD_APPROVAL = "trusted"
    settings.PBTS_UPLOAD_TRUSTED_CLASSES = ["elite"]
    vip, elite = MemberFactory(), MemberFactory()
    Member.objects.filter(pk=vip.pk).update(member_class="vip")
    Member.objects.filter(pk=elite.pk).update(member_class="elite")
    vip.refresh_from_db()
    elite.refresh_from_db()
    assert upload_status(vip) == TorrentStatus.PENDING
    assert upload_status(elite) == TorrentStatus.APPROVED


# --- Reports --------------------------------------------------------------------------------


def test_member_reports_a_torrent_and_a_member(member, torrent, staff):
    report = _report(member, torrent=torrent)
    assert report.status == ReportStatus.OPEN and report.torrent == torrent
    other = _report(member, member=staff)
    assert other.member == staff and other.torrent is None


def test_one_open_report_per_reporter_and_target(member, torrent):
    _report(member, torrent=torrent)
    with pytest.raises(Conflict):
        _report(member, torrent=torrent)
    # Another member may report the same torrent.
    _report(MemberFactory(), torrent=torrent)


def test_a_closed_report_allows_a_new_one(member, torrent, staff):
    report = _report(member, torrent=torrent)
    report_close(report=report, actor=staff, status="dismissed", resolution="Not fake.")
    assert _report(member, torrent=torrent).status == ReportStatus.OPEN


def test_report_spam_is_rate_limited(settings, member):
    settings.PBTS_REPORTS_PER_HOUR = 3
    targets = [MemberFactory() for _ in range(4)]
    for target in targets[:3]:
        _report(member, member=target)
    with pytest.raises(InvalidInput) as err:
        _report(member, member=targets[3])
    assert "too many" in err.value.message
    assert Report.objects.filter(reporter=member).count() == 3
    # Another member is not limited by the first one's reports.
    _report(MemberFactory(), member=targets[3])


@pytest.mark.parametrize(
    ("category", "text", "field"),
    [
        ("nonsense", "text", "category"),
        ("fake", "", "text"),
        ("fake", "   \n ", "text"),
        ("fake", "x" * 2001, "text"),
        ("fake", "nul \x00 byte", "text"),
    ],
)
def test_bad_report_input_names_the_field(member, torrent, category, text, field):
    with pytest.raises(InvalidInput) as err:
        report_create(reporter=member, category=category, text=text, torrent=torrent)
    assert err.value.field == field
    assert not Report.objects.exists()


def test_report_text_limit_is_a_setting(settings, member, torrent):
    settings.PBTS_REPORT_TEXT_MAX_CHARS = 10
    with pytest.raises(InvalidInput):
        report_create(reporter=member, category="fake", text="x" * 11, torrent=torrent)
    report_create(reporter=member, category="fake", text="x" * 10, torrent=torrent)


def test_nobody_reports_themselves_or_two_targets(member, torrent):
    with pytest.raises(InvalidInput) as err:
        _report(member, member=member)
    assert err.value.field == "member"
    with pytest.raises(InvalidInput):
        _report(member, member=MemberFactory(), torrent=torrent)
    with pytest.raises(InvalidInput):
        _report(member)


def test_a_torrent_the_reporter_cannot_see_is_not_found(settings, member):
    settings.PBTS_UPLOAD_APPROVAL = "staff"
    pending = upload_torrent(MemberFactory())
    with pytest.raises(NotFound):
        _report(member, torrent=pending)


def test_a_banned_member_cannot_report(member, staff):
    target = MemberFactory()
    member_ban(member=member, actor=staff, reason="spam")
    member.refresh_from_db()
    with pytest.raises(NotPermitted):
        _report(member, member=target)


def test_claim_then_resolve_notifies_the_reporter_and_audits(member, torrent, staff):
    report = _report(member, torrent=torrent)
    report = report_claim(report=report, actor=staff)
    assert report.status == ReportStatus.CLAIMED and report.claimed_by == staff
    report = report_close(report=report, actor=staff, status="resolved", resolution="Removed.")
    assert report.status == ReportStatus.RESOLVED and report.resolution == "Removed."
    notice = Notification.objects.get(member=member)
    assert notice.kind == "report_resolved" and notice.body == "Removed."
    assert notice.url == f"/torrents/{torrent.pk}/"
    actions = set(AuditLog.objects.filter(actor=staff).values_list("action", flat=True))
    assert {"report_claim", "report_resolved"} <= actions


def test_a_member_cannot_claim_or_resolve(member, torrent):
    report = _report(MemberFactory(), torrent=torrent)
    with pytest.raises(NotPermitted):
        report_claim(report=report, actor=member)
    with pytest.raises(NotPermitted):
        report_close(report=report, actor=member, status="resolved", resolution="mine")
    report.refresh_from_db()
    assert report.status == ReportStatus.OPEN


def test_banned_staff_can_do_nothing(member, torrent):
    owner = MemberFactory(is_staff=True, is_superuser=True)
    banned = MemberFactory(is_staff=True)
    member_ban(member=banned, actor=owner, reason="rogue")
    banned.refresh_from_db()
    report = _report(member, torrent=torrent)
    target = MemberFactory()
    for attempt in (
        lambda: report_claim(report=report, actor=banned),
        lambda: report_close(report=report, actor=banned, status="dismissed", resolution="x"),
        lambda: warning_issue(member=target, actor=banned, reason="x", days=3),
        lambda: note_add(member=target, author=banned, body="x"),
    ):
        with pytest.raises(NotPermitted):
            attempt()
    assert not MemberWarning.objects.exists() and not StaffNote.objects.exists()
    assert member_notes(member=target, viewer=banned).count() == 0


def test_a_claimed_report_is_closed_only_by_its_claimer_or_a_superuser(member, torrent, staff):
    report = report_claim(report=_report(member, torrent=torrent), actor=staff)
    other = MemberFactory(is_staff=True)
    with pytest.raises(Conflict):
        report_claim(report=report, actor=other)
    with pytest.raises(NotPermitted):
        report_close(report=report, actor=other, status="dismissed", resolution="no")
    owner = MemberFactory(is_staff=True, is_superuser=True)
    report_close(report=report, actor=owner, status="dismissed", resolution="Owner says no.")
    with pytest.raises(Conflict):
        report_close(report=report, actor=staff, status="resolved", resolution="again")


def test_a_moderator_never_handles_a_report_about_themselves(member, staff):
    report = _report(member, member=staff)
    with pytest.raises(NotPermitted):
        report_claim(report=report, actor=staff)
    with pytest.raises(NotPermitted):
        report_close(report=report, actor=staff, status="dismissed", resolution="lies")


@pytest.mark.parametrize(
    ("status", "resolution", "field"),
    [
        ("open", "note", "status"),
        ("resolved", "", "resolution"),
        ("resolved", "x" * 2001, "resolution"),
    ],
)
def test_bad_close_input_names_the_field(member, torrent, staff, status, resolution, field):
    report = _report(member, torrent=torrent)
    with pytest.raises(InvalidInput) as err:
        report_close(report=report, actor=staff, status=status, resolution=resolution)
    assert err.value.field == field


# --- Warnings -------------------------------------------------------------------------------


def test_warning_is_active_until_it_expires(member, staff):
    warning = warning_issue(member=member, actor=staff, reason="Be nice.", days=3)
    assert list(member_warnings(member=member)) == [warning]
    assert warning_state(warning) == "active"
    later = timezone.now() + timedelta(days=3, minutes=1)
    assert warning_state(warning, later) == "expired"
    MemberWarning.objects.filter(pk=warning.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert list(member_warnings(member=member)) == []
    assert Notification.objects.get(member=member).kind == "warning_issued"
    assert AuditLog.objects.filter(actor=staff, action="member_warn").count() == 1


def test_staff_revoke_a_warning_early(member, staff):
    warning = warning_issue(member=member, actor=staff, reason="Be nice.", days=3)
    warning_revoke(warning=warning, actor=staff, reason="Apologised.")
    assert list(member_warnings(member=member)) == []
    with pytest.raises(Conflict):
        warning_revoke(warning=warning, actor=staff)
    assert AuditLog.objects.filter(action="warning_revoke").count() == 1


def test_an_expired_warning_cannot_be_revoked(member, staff):
    warning = warning_issue(member=member, actor=staff, reason="Be nice.", days=1)
    MemberWarning.objects.filter(pk=warning.pk).update(expires_at=timezone.now())
    with pytest.raises(Conflict):
        warning_revoke(warning=warning, actor=staff)


def test_a_member_cannot_warn_and_staff_cannot_warn_staff_or_themselves(member, staff):
    with pytest.raises(NotPermitted):
        warning_issue(member=MemberFactory(), actor=member, reason="x", days=1)
    with pytest.raises(NotPermitted):
        warning_issue(member=MemberFactory(is_staff=True), actor=staff, reason="x", days=1)
    with pytest.raises(NotPermitted):
        warning_issue(member=staff, actor=staff, reason="x", days=1)
    warning = warning_issue(member=member, actor=staff, reason="x", days=1)
    with pytest.raises(NotPermitted):
        warning_revoke(warning=warning, actor=member)
    assert MemberWarning.objects.count() == 1


@pytest.mark.parametrize(
    ("reason", "days", "field"),
    [
        ("", 3, "reason"),
        ("ok", 0, "days"),
        ("ok", 366, "days"),
        ("ok", True, "days"),
        ("x" * 2001, 3, "reason"),
    ],
)
def test_bad_warning_input_names_the_field(member, staff, reason, days, field):
    with pytest.raises(InvalidInput) as err:
        warning_issue(member=member, actor=staff, reason=reason, days=days)
    assert err.value.field == field


# --- Notes ----------------------------------------------------------------------------------


def test_notes_are_for_staff_only_never_the_member(member, staff):
    note = note_add(member=member, author=staff, body="Asked twice for invites.")
    assert list(member_notes(member=member, viewer=staff)) == [note]
    assert member_notes(member=member, viewer=member).count() == 0
    assert member_notes(member=member, viewer=MemberFactory()).count() == 0
    # A staff member never reads the notes about themselves.
    other_staff = MemberFactory(is_staff=True)
    note_add(member=staff, author=other_staff, body="About staff.")
    assert member_notes(member=staff, viewer=staff).count() == 0
    assert member_notes(member=staff, viewer=other_staff).count() == 1


def test_a_member_cannot_write_notes_nor_staff_about_themselves(member, staff):
    with pytest.raises(NotPermitted):
        note_add(member=MemberFactory(), author=member, body="x")
    with pytest.raises(NotPermitted):
        note_add(member=staff, author=staff, body="x")
    with pytest.raises(InvalidInput) as err:
        note_add(member=member, author=staff, body="x" * 5001)
    assert err.value.field == "body"
