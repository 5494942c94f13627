"""My history and the hit-and-run pages in a real browser (issue 15): every section at 1366 and
390 px with a 255-character torrent name and a long rejection reason, no console error, no
horizontal overflow; staff forgive a hit-and-run with the page's form (no JavaScript)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from tests.pages.browser import NAME_255, NARROW, WIDE, SiteData, Visitor
from tracker.models import HitAndRun, HitAndRunState, TorrentHistory
from tracker.selectors import HISTORY_SECTIONS
from tracker.services.hnr import hnr_evaluate
from tracker.services.torrents import torrent_moderate
from tracker.tests.torrents import upload_torrent

REASON = "Wrong category and no description. " * 8


def _history(site: SiteData) -> HitAndRun:
    """The member snatched the 255-character torrent long ago without seeding it (a
    hit-and-run), seeded another well, and had an upload rejected."""
    long_ago = timezone.now() - timedelta(days=40)
    TorrentHistory.objects.create(
        member=site.member,
        torrent=site.long_torrent,
        completed_at=long_ago,
        downloaded=site.long_torrent.size,
        uploaded=10,
        seed_seconds=3600,
    )
    seeded = upload_torrent(site.owner, name="Seeded.Well.2025")
    TorrentHistory.objects.create(
        member=site.member,
        torrent=seeded,
        completed_at=long_ago,
        downloaded=seeded.size,
        uploaded=3 * seeded.size,
        seed_seconds=10 * 86400,
    )
    rejected = upload_torrent(site.member, name=NAME_255[:200] + ".Rejected")
    torrent_moderate(torrent=rejected, actor=site.owner, status="rejected", reason=REASON)
    hnr_evaluate()
    return HitAndRun.objects.get(member=site.member, state=HitAndRunState.HIT_AND_RUN)


def test_member_history_sections_fit_both_widths(visit: Any, site: SiteData):
    _history(site)
    visitor: Visitor = visit("member")
    for section in HISTORY_SECTIONS:
        visitor.check(f"{reverse('history')}?section={section}", f"history-{section}")
    visitor.goto(f"{reverse('history')}?section=hnr")
    assert visitor.page.locator(".badge.hnr-hit_and_run").count() == 1
    assert visitor.page.locator("form.forgive").count() == 0
    visitor.goto(f"{reverse('history')}?section=uploads")
    assert "Wrong category" in visitor.page.inner_text("table.history")
    visitor.check(reverse("profile"), "profile-hnr")
    assert visitor.page.inner_text(".hnr-count") == "1"


def test_staff_forgive_on_the_members_history_at_both_widths(visit: Any, site: SiteData):
    row = _history(site)
    visitor: Visitor = visit("owner")
    url = f"{reverse('member_history', args=[site.member.username])}?section=hnr"
    visitor.check(url, "member-history-hnr")
    for viewport in (NARROW, WIDE):
        visitor.page.set_viewport_size(viewport)
        visitor.assert_fits("forgive form", viewport)
    visitor.page.fill(f"#reason-{row.pk}", "Tracker outage that week")
    with visitor.page.expect_navigation():
        visitor.page.click("form.forgive button[type=submit]")
    assert visitor.page.url == visitor.url(url)
    assert visitor.page.locator(".badge.hnr-forgiven").count() == 1
    assert "Hit-and-run forgiven." in visitor.page.inner_text(".messages")
    visitor.assert_no_console_errors("after forgiving")
    row.refresh_from_db()
    assert (row.state, row.forgive_reason) == (HitAndRunState.FORGIVEN, "Tracker outage that week")
