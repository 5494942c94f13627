"""The moderation pages in a real browser (issue 15): the upload queue with a 255-character
pending torrent, reports (filed through the form, claimed and resolved by staff), warnings and
staff notes on a profile, the invite tree and the statistics page, each at 1366 and 390 px
with no console error and no horizontal overflow; all forms work without JavaScript."""

from __future__ import annotations

from typing import Any

from django.test import override_settings
from django.urls import reverse

from moderation.models import Report, ReportStatus
from moderation.services.notes import note_add
from moderation.services.warnings import warning_issue
from tests.pages.browser import NAME_255, SiteData, Visitor
from tracker.models import TorrentStatus
from tracker.tests.torrents import upload_torrent

LONG_TEXT = "A.long.report.text.without.spaces." * 20


def test_staff_approve_and_reject_in_the_queue(visit: Any, site: SiteData):
    with override_settings(PBTS_UPLOAD_APPROVAL="staff"):
        keep = upload_torrent(site.member, name=NAME_255[:240] + ".Pending.A")
        drop = upload_torrent(site.member, name=NAME_255[:240] + ".Pending.B")
    assert keep.status == drop.status == TorrentStatus.PENDING
    owner: Visitor = visit("owner")
    owner.check(reverse("moderation:queue"), "moderation-queue")
    page = owner.page
    with page.expect_navigation():
        page.click(f"form[action='{reverse('moderation:queue_approve', args=[keep.pk])}'] button")
    assert "Approved" in page.inner_text(".messages")
    page.fill(f"#reason-{drop.pk}", "Wrong category, and " + LONG_TEXT)
    with page.expect_navigation():
        page.click(f"form[action='{reverse('moderation:queue_reject', args=[drop.pk])}'] button")
    assert "Rejected" in page.inner_text(".messages")
    owner.assert_no_console_errors("queue decisions")
    keep.refresh_from_db()
    drop.refresh_from_db()
    assert keep.status == TorrentStatus.APPROVED and drop.status == TorrentStatus.REJECTED


def test_member_reports_and_staff_resolve(visit: Any, site: SiteData):
    member: Visitor = visit("member")
    member.goto(reverse("torrent_detail", args=[site.long_torrent.pk]))
    with member.page.expect_navigation():
        member.page.click("text=Report this torrent")
    member.check(member.page.url, "report-form")
    member.page.select_option("select[name=category]", "fake")
    member.page.fill("textarea[name=text]", LONG_TEXT)
    with member.page.expect_navigation():
        member.page.click("main form button[type=submit]")
    assert "staff will look" in member.page.inner_text(".messages")
    report = Report.objects.get(reporter=site.member)

    owner: Visitor = visit("owner")
    owner.check(reverse("moderation:report_list"), "moderation-reports")
    detail = reverse("moderation:report_detail", args=[report.pk])
    owner.check(detail, "moderation-report")
    with owner.page.expect_navigation():
        owner.page.click("button:has-text('Claim')")
    owner.page.check("input[name=status][value=resolved]")
    owner.page.fill("textarea[name=resolution]", "Removed, thank you.")
    with owner.page.expect_navigation():
        owner.page.click("button:has-text('Close report')")
    owner.check(detail, "moderation-report-closed")
    report.refresh_from_db()
    assert report.status == ReportStatus.RESOLVED


def test_warnings_and_notes_on_a_profile(visit: Any, site: SiteData):
    warning_issue(member=site.member, actor=site.owner, reason=LONG_TEXT, days=7)
    note_add(member=site.member, author=site.owner, body="Staff only: " + LONG_TEXT)
    member: Visitor = visit("member")
    member.check(reverse("profile"), "profile-warnings")
    text = member.page.inner_text("main")
    assert "Active warnings (1)" in text and "Staff only" not in text

    owner: Visitor = visit("owner")
    profile = reverse("member_detail", args=[site.member.username])
    owner.check(profile, "member-moderation-block")
    assert "Staff only" in owner.page.inner_text("main")
    moderate = reverse("moderation:member", args=[site.member.username])
    owner.check(moderate, "member-moderation")
    owner.page.fill("textarea[name=reason]", "Second warning.")
    owner.page.fill("input[name=days]", "3")
    with owner.page.expect_navigation():
        owner.page.click("button:has-text('Warn')")
    assert "was warned" in owner.page.inner_text(".messages")
    owner.check(reverse("moderation:invite_tree", args=[site.owner.username]), "invite-tree")
    assert site.member.username in owner.page.inner_text("main")


def test_statistics_page(visit: Any, site: SiteData):
    member: Visitor = visit("member")
    member.check(reverse("moderation:stats"), "stats")
    assert "Site statistics" in member.page.inner_text("h1")
