"""The site's pages in a real browser (Debian's Chromium through Playwright): log in as the owner
and as a member, upload through the form, download, open every page of the navigation and the
profile, security and invites pages, and check that each answers 200, logs no console error and
fits the viewport at 1366x900 and 390x844 while torrents with 255-character names exist.
Screenshots land in ``.local/screenshots/`` (git-ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torf
from django.urls import reverse
from fastbencode import bdecode

from tests.pages.browser import NAME_255, NARROW, WIDE, SiteData, Visitor
from tracker.models import Torrent
from tracker.selectors import member_announce_url


def _nav_links(visitor: Visitor) -> list[str]:
    """The hrefs of the main navigation's links (the log-out button is a form, not a link)."""
    return visitor.page.eval_on_selector_all(
        "header nav a[href]", "links => links.map(link => link.getAttribute('href'))"
    )


def _make_torrent_file(tmp_path: Path) -> Path:
    """A small single-file .torrent made with torf."""
    content = tmp_path / "browser-upload.bin"
    content.write_bytes(bytes(range(256)) * 400)
    torrent = torf.Torrent(
        path=content, trackers=["http://tracker.example.invalid/announce"], piece_size=16384
    )
    torrent.generate()
    torrent_path = tmp_path / "browser-upload.torrent"
    torrent.write(torrent_path)
    return torrent_path


def test_member_uploads_through_the_form_and_downloads(visit: Any, site: SiteData, tmp_path):
    """The upload form takes a .torrent and a 255-character name; the detail page's download
    link serves a bencoded, private torrent carrying the member's announce URL."""
    visitor: Visitor = visit("member")
    page = visitor.page
    visitor.goto(reverse("torrent_upload"))
    page.set_input_files("input[type=file][name=file]", str(_make_torrent_file(tmp_path)))
    display_name = "Uploaded." + NAME_255[: 255 - len("Uploaded.")]
    page.fill("input[name=name]", display_name)
    page.select_option("select[name=category]", index=1)
    page.fill("textarea[name=description]", "Uploaded **through the form** by the page suite.")
    with page.expect_navigation() as navigation:
        page.click("main form button[type=submit]")
    response = navigation.value
    assert response is not None and response.status == 200
    torrent = Torrent.objects.get(name=display_name)
    assert page.url == visitor.url(reverse("torrent_detail", args=[torrent.pk]))
    assert "Torrent uploaded" in page.inner_text(".messages")
    visitor.assert_no_console_errors("upload")
    visitor.assert_fits("uploaded torrent", WIDE)

    with page.expect_download() as download_info:
        page.click("text=Download .torrent")
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".torrent")
    metainfo = bdecode(Path(download.path()).read_bytes())
    assert metainfo[b"info"][b"private"] == 1
    assert metainfo[b"info"][b"name"] == b"browser-upload.bin"
    assert metainfo[b"announce"].decode() == member_announce_url(site.member)
    visitor.assert_no_console_errors("download")


def _member_pages(site: SiteData) -> list[tuple[str, str]]:
    """(path, name) of the pages beside the navigation that both roles check."""
    return [
        (reverse("torrent_detail", args=[site.long_torrent.pk]), "torrent-255"),
        (reverse("torrent_detail", args=[site.multi_file_torrent.pk]), "torrent-files"),
        (reverse("security"), "security"),
        (reverse("member_detail", args=[site.owner.username]), "member-owner"),
        (reverse("member_detail", args=[site.member.username]), "member-long-name"),
        (reverse("password_change"), "password-change"),
        (reverse("torrent_list") + "?q=Extremely", "torrents-search"),
    ]


def _check_every_page(visitor: Visitor, site: SiteData) -> list[str]:
    """Check the navigation's pages, then the others; returns the navigation's hrefs."""
    visitor.goto(reverse("home"))
    links = _nav_links(visitor)
    for href in links:
        name = href.strip("/").replace("/", "-") or "home"
        visitor.check(href, name)
    for path, name in _member_pages(site):
        visitor.check(path, name)
    return links


def test_member_pages_fit_both_widths(visit: Any, site: SiteData):
    """A member's navigation and pages: 200, no console error, no overflow at either width."""
    visitor: Visitor = visit("member")
    links = _check_every_page(visitor, site)
    expected = {
        reverse(name)
        for name in ("home", "torrent_list", "torrent_upload", "invite_list", "profile")
    }
    assert expected <= set(links), links
    assert reverse("site_page", args=["rules"]) in links
    assert reverse("site_page", args=["faq"]) in links
    assert reverse("admin:index") not in links


def test_owner_pages_fit_both_widths(visit: Any, site: SiteData):
    """The owner's navigation (with Admin) and pages fit; the admin index, the member and
    torrent changelists fit at 1366 px."""
    visitor: Visitor = visit("owner")
    links = _check_every_page(visitor, site)
    assert reverse("admin:index") in links
    for name in ("admin:tracker_member_changelist", "admin:tracker_torrent_changelist"):
        visitor.check(reverse(name), name.replace("admin:tracker_", "admin-"), widths=(WIDE,))
        # The admin scrolls a wide results table inside its box: every column must show.
        visitor.assert_fits_inside("#changelist-form .results", name)
        assert visitor.page.locator("#result_list tbody tr").count() >= 2, name
    visitor.check(
        reverse("admin:tracker_torrent_change", args=[site.long_torrent.pk]),
        "admin-torrent-change",
        widths=(WIDE,),
    )


def test_api_docs_list_the_operations(visit: Any, site: SiteData):
    """Swagger UI (served offline by drf-spectacular-sidecar) renders the API's operations."""
    visitor: Visitor = visit("member")
    visitor.goto(reverse("api-docs"))
    page = visitor.page
    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock").count()
    assert operations > 10, operations
    paths = page.eval_on_selector_all(
        ".opblock-summary-path", "els => els.map(el => el.getAttribute('data-path'))"
    )
    assert "/api/v1/me/" in paths, paths
    assert "/api/v1/torrents/" in paths, paths
    for viewport in (WIDE, NARROW):
        visitor.page.set_viewport_size(viewport)
        visitor.screenshot("api-docs")
        visitor.assert_fits("api docs", viewport)
    visitor.assert_no_console_errors("api docs")
