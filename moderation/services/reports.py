"""Reports: any member reports a torrent or a member; staff claim, then resolve or dismiss.

Rules (docs/moderation.md): a member in good standing reports a torrent they can see or
another member (not themselves), with a category and a text of at most
``PBTS_REPORT_TEXT_MAX_CHARS`` characters; one open (or claimed) report per reporter and
target; at most ``PBTS_REPORTS_PER_HOUR`` reports an hour. Staff in good standing claim an open
report and resolve or dismiss it with a note; a moderator never handles a report about
themselves. The reporter is notified when it is closed. Staff actions are audited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound, NotPermitted
from core.notifications import notify
from core.ratelimit import rate_limit_hit
from moderation.models import OPEN_STATUSES, Report, ReportCategory, ReportStatus
from moderation.services._common import REASON_MAX_CHARS, clean_text, staff_check
from tracker.models import Member, Torrent
from tracker.selectors import torrent_visible

DUPLICATE_MESSAGE = "You already have an open report about this."
RATE_MESSAGE = "You have filed too many reports this hour; try again later."


@transaction.atomic
def report_create(
    *,
    reporter: Member,
    category: str,
    text: str,
    torrent: Torrent | None = None,
    member: Member | None = None,
) -> Report:
    """File a report about ``torrent`` or ``member`` (exactly one).

    Args:
        reporter: the member reporting.
        category: a ``ReportCategory`` value.
        text: what is wrong, 1 to ``PBTS_REPORT_TEXT_MAX_CHARS`` characters.

    Raises:
        NotPermitted: the reporter is banned or inactive.
        InvalidInput: no or two targets, the reporter's own account (field ``member``), an
            unknown category (field ``category``), an empty or too long text (field
            ``text``).
        NotFound: the torrent is not visible to the reporter.
        Conflict: the reporter already has an open report about this target.
        InvalidInput: over the hourly limit (``PBTS_REPORTS_PER_HOUR``; no field).
    """
    if reporter.is_banned or not reporter.is_active:
        raise NotPermitted("Your account is banned.")
    if (torrent is None) == (member is None):
        raise InvalidInput("Report either a torrent or a member.")
    if category not in ReportCategory.values:
        raise InvalidInput("Choose a category.", field="category")
    text = clean_text(text, field="text", limit=settings.PBTS_REPORT_TEXT_MAX_CHARS)
    if member is not None and member.pk == reporter.pk:
        raise InvalidInput("You cannot report yourself.", field="member")
    if torrent is not None and not torrent_visible(viewer=reporter).filter(pk=torrent.pk).exists():
        raise NotFound("This torrent does not exist.")
    target = {"torrent": torrent} if torrent is not None else {"member": member}
    if Report.objects.filter(reporter=reporter, status__in=OPEN_STATUSES, **target).exists():
        raise Conflict(DUPLICATE_MESSAGE)
    if not rate_limit_hit(
        "moderation-report",
        str(reporter.pk),
        limit=settings.PBTS_REPORTS_PER_HOUR,
        window_seconds=3600,
    ):
        raise InvalidInput(RATE_MESSAGE)
    try:
        with transaction.atomic():
            return Report.objects.create(reporter=reporter, category=category, text=text, **target)
    except IntegrityError as exc:  # a concurrent duplicate
        raise Conflict(DUPLICATE_MESSAGE) from exc


def _handle_check(report: Report, actor: Member) -> None:
    staff_check(actor)
    if report.member_id is not None and report.member_id == actor.pk:
        raise NotPermitted("This report is about you: another moderator must handle it.")


@transaction.atomic
def report_claim(*, report: Report, actor: Member) -> Report:
    """Claim an open report for ``actor``; audited as ``report_claim``.

    Raises:
        NotPermitted: the actor is not staff in good standing, or the report is about them.
        Conflict: the report is not open (claimed by someone, or closed).
    """
    _handle_check(report, actor)
    now = timezone.now()
    claimed = Report.objects.filter(pk=report.pk, status=ReportStatus.OPEN).update(
        status=ReportStatus.CLAIMED, claimed_by=actor, claimed_at=now, updated_at=now
    )
    report = Report.objects.select_related("claimed_by").get(pk=report.pk)
    if not claimed:
        if report.status == ReportStatus.CLAIMED:
            raise Conflict(f"Already claimed by {report.claimed_by or 'someone'}.")
        raise Conflict(f"This report is already {report.status}.")
    audit_record(
        actor=actor,
        action="report_claim",
        target=report,
        old={"status": ReportStatus.OPEN},
        new={"status": ReportStatus.CLAIMED},
    )
    return report


@transaction.atomic
def report_close(*, report: Report, actor: Member, status: str, resolution: str) -> Report:
    """Resolve or dismiss a report with a note; notify the reporter; audited as
    ``report_<status>``.

    An open report is claimed by ``actor`` on the way; a report claimed by another
    moderator can be closed only by a superuser.

    Args:
        status: ``resolved`` or ``dismissed``.
        resolution: the note (shown to the reporter), 1 to 2,000 characters.

    Raises:
        NotPermitted: not staff in good standing, the report is about the actor, or another
            moderator claimed it.
        InvalidInput: a bad status (field ``status``) or note (field ``resolution``).
        Conflict: the report is already closed.
    """
    _handle_check(report, actor)
    if status not in (ReportStatus.RESOLVED, ReportStatus.DISMISSED):
        raise InvalidInput("Choose resolved or dismissed.", field="status")
    resolution = clean_text(resolution, field="resolution", limit=REASON_MAX_CHARS)
    report = (
        Report.objects.select_for_update(of=("self",))
        .select_related("reporter", "torrent", "member")
        .get(pk=report.pk)
    )
    if report.status not in OPEN_STATUSES:
        raise Conflict(f"This report is already {report.status}.")
    if (
        report.status == ReportStatus.CLAIMED
        and report.claimed_by_id not in (None, actor.pk)
        and not actor.is_superuser
    ):
        raise NotPermitted("Another moderator claimed this report.")
    old = {"status": report.status}
    now = timezone.now()
    if report.claimed_by_id is None:
        report.claimed_by, report.claimed_at = actor, now
    report.status = status
    report.resolved_by, report.resolved_at, report.resolution = actor, now, resolution
    report.save(
        update_fields=[
            "status",
            "claimed_by",
            "claimed_at",
            "resolved_by",
            "resolved_at",
            "resolution",
            "updated_at",
        ]
    )
    audit_record(
        actor=actor,
        action=f"report_{status}",
        target=report,
        old=old,
        new={"status": status, "resolution": resolution},
        reason=resolution,
    )
    if report.torrent_id is not None:
        url = reverse("torrent_detail", args=[report.torrent_id])
    else:
        url = reverse("member_detail", args=[report.member.username])
    notify(
        member=report.reporter,
        kind=f"report_{status}",
        subject=f"Your report about {report.target_label} was {status}",
        body=resolution,
        url=url,
    )
    return report
