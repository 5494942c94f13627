"""Notifications, the header badge, "Export my data" and "Delete my account" in a real browser
(issue 15): each page at 1366 and 390 px with a 255-character subject, no console error, no
horizontal overflow; the forms work without JavaScript."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Browser

from core.notifications import notify
from tests.pages.browser import NAME_255, PASSWORD, WIDE, SiteData, Visitor
from tracker.models import Member
from tracker.services.members import member_create

LONG_BODY = "Reason: " + "The upload has no description and the wrong category. " * 6


def _badge(visitor: Visitor) -> str:
    badge = visitor.page.locator("header .notifications-link .badge")
    return badge.inner_text() if badge.count() else ""


def test_notifications_page_and_header_badge(visit: Any, site: SiteData):
    for index in range(3):
        notify(
            member=site.member,
            kind="torrent_rejected",
            subject=f"Your torrent was rejected: {NAME_255}"[: 255 - index],
            body=LONG_BODY,
            url=f"/torrents/{site.multi_file_torrent.pk}/",
        )
    member = visit("member")
    member.goto("/")
    assert _badge(member) == "3"
    member.check("/notifications/", "notifications")
    assert member.page.locator("ol.notifications li.unread").count() == 3
    mark = member.page.locator("ol.notifications li.unread button", has_text="Mark read").first
    color = mark.evaluate("el => getComputedStyle(el).color")
    assert color != "rgb(255, 255, 255)", "the Mark read button is white on white"

    with member.page.expect_navigation():
        mark.click()
    assert _badge(member) == "2"
    assert member.page.locator("ol.notifications li.unread").count() == 2

    with member.page.expect_navigation():
        member.page.click("button:has-text('Mark all read')")
    assert _badge(member) == ""
    assert "2 notifications marked read." in member.page.inner_text("main")
    member.check("/notifications/", "notifications-read")

    with member.page.expect_navigation():
        member.page.check("input[name=email_enabled]")
        member.page.click("section button:has-text('Save')")
    assert "E-mail copies are on." in member.page.inner_text("main")
    assert member.page.is_checked("input[name=email_enabled]")
    member.assert_no_console_errors("notification settings")


def test_export_page_downloads_the_members_json(visit: Any, site: SiteData):
    member = visit("member")
    member.check("/profile/export/", "my-data-export")
    with member.page.expect_download() as download_info:
        member.page.click("button:has-text('Download my data')")
    download = download_info.value
    assert download.suggested_filename.startswith("pbts-my-data-")
    data = json.loads(download.path().read_text(encoding="utf-8"))
    assert data["sections"]["account"]["username"] == site.member.username
    assert site.member.passkey not in json.dumps(data)
    member.assert_no_console_errors("export download")


def test_delete_page_refuses_a_wrong_password_then_deletes(browser: Browser, site: SiteData):
    leaver = member_create(username="leaver", email="leaver@example.org", password=PASSWORD)
    context = browser.new_context(viewport=WIDE)
    try:
        visitor = Visitor(page=context.new_page(), base_url=site.url, role="leaver")
        visitor.log_in("leaver")
        visitor.check("/profile/delete/", "account-delete")

        visitor.page.fill("input[name=password]", "not my password")
        visitor.page.check("input[name=confirm]")
        with visitor.page.expect_navigation() as navigation:
            visitor.page.click("button:has-text('Delete my account')")
        assert navigation.value is not None and navigation.value.status == 400
        assert "That is not your password." in visitor.page.inner_text("main")
        assert Member.objects.get(pk=leaver.pk).is_active

        visitor.page.fill("input[name=password]", PASSWORD)
        visitor.page.check("input[name=confirm]")
        with visitor.page.expect_navigation():
            visitor.page.click("button:has-text('Delete my account')")
        assert visitor.page.url.startswith(visitor.url("/login/"))
        assert "Your account was deleted." in visitor.page.inner_text("main")
        leaver.refresh_from_db()
        assert leaver.username == f"deleted-{leaver.pk}" and not leaver.is_active
    finally:
        context.close()
