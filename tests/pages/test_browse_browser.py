"""Browse in a real browser (issue 15): the torrent list with filters, sorting and bookmark
buttons, the torrent page with peers, snatches and the staff history, "My bookmarks" and the
feeds page, each at 1366 and 390 px with no console error and no horizontal overflow; every
form works without JavaScript."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.pages.browser import SiteData
from tracker import announce_runtime
from tracker.models import ClientPrefix, Torrent, TorrentHistory
from tracker.services.browse import torrent_tags_set
from tracker.tests.test_announce import announce

PEER_IP = "198.51.100.23"


@pytest.fixture
def swarm(site: SiteData, monkeypatch):
    """The long-named torrent with two peers (the 150-character member leeching, the owner
    seeding) in a fresh in-process runtime the live server shares, and two snatches."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url=""))
    ClientPrefix.objects.get_or_create(prefix="-TR4", defaults={"name": "Transmission 4"})
    torrent = site.long_torrent
    client = Client()
    for member, left in ((site.owner, 0), (site.member, 123_456)):
        reply = announce(client, member, torrent, ip=PEER_IP, left=left)
        assert b"failure reason" not in reply, reply
    now = timezone.now()
    for member, seconds in ((site.owner, 93_784), (site.member, 61)):
        TorrentHistory.objects.update_or_create(
            member=member, torrent=torrent, defaults={"completed_at": now, "seed_seconds": seconds}
        )
    torrent_tags_set(torrent=torrent, actor=site.owner, tags=["long-name", "test", "x" * 32])
    return torrent


def _names(visitor) -> list[str]:
    return visitor.page.locator("table.torrents td.name > a:first-child").all_inner_texts()


def test_list_filters_sorting_and_bookmarks(visit: Any, site: SiteData, swarm: Torrent):
    member = visit("member")
    member.check("/torrents/", "torrent-list")
    # Sort by size, then click the header again for the other direction.
    with member.page.expect_navigation():
        member.page.click("table.torrents th a:has-text('Size')")
    sizes = [t.size for t in Torrent.objects.order_by("-size", "-id")]
    assert "sort=size" in member.page.url and "order=desc" in member.page.url
    names = _names(member)
    assert names[0] == Torrent.objects.get(size=sizes[0]).name
    with member.page.expect_navigation():
        member.page.click("table.torrents th a:has-text('Size')")
    assert "order=asc" in member.page.url
    assert _names(member)[0] == Torrent.objects.order_by("size", "id").first().name
    member.check(member.page.url, "torrent-list-sorted")

    # Filter by tag through the form (no JavaScript involved).
    member.page.fill("input[name=tag]", "Long Name")
    with member.page.expect_navigation():
        member.page.click("form.filters button[type=submit]")
    assert _names(member) == [swarm.name]
    # A bad value shows as a form error, the page still lists.
    member.goto("/torrents/?sort=evil&tag=no%2Fway")
    assert member.page.locator("form.filters p.error").count() == 2
    member.check("/torrents/?sort=evil&tag=no%2Fway", "torrent-list-errors")

    # Bookmark from the list, find it on "My bookmarks", remove it there.
    member.goto("/torrents/?sort=name&order=asc")
    row = member.page.locator("table.torrents tr", has_text="Short.Name.1")
    button = row.locator("button:has-text('Bookmark')")
    color = button.evaluate("el => getComputedStyle(el).color")
    assert color != "rgb(255, 255, 255)", "the Bookmark button is white on white"
    with member.page.expect_navigation():
        button.click()
    assert "sort=name" in member.page.url
    assert "★ Bookmarked" in row.inner_text()
    member.check("/bookmarks/", "bookmarks")
    assert member.page.locator("table.bookmarks td.name").all_inner_texts() == ["Short.Name.1"]
    with member.page.expect_navigation():
        member.page.click("table.bookmarks button:has-text('Remove')")
    assert "No bookmarks yet" in member.page.inner_text("main")
    member.assert_no_console_errors("bookmarks")


def test_torrent_page_peers_snatches_and_staff_history(visit: Any, site: SiteData, swarm):
    path = f"/torrents/{swarm.pk}/"
    member = visit("member")
    member.check(path, "torrent-peers")
    peers = member.page.inner_text("table.peers")
    assert "Transmission 4" in peers and site.owner.username in peers
    assert PEER_IP not in member.page.content()
    snatches = member.page.inner_text("table.snatches")
    assert "1d 2h" in snatches and "1m" in snatches
    assert member.page.locator("text=Moderation history").count() == 0
    # Bookmark from the torrent page.
    with member.page.expect_navigation():
        member.page.click("div.actions button:has-text('Bookmark')")
    assert "Remove bookmark" in member.page.inner_text("div.actions")

    owner = visit("owner")
    owner.check(path, "torrent-peers-staff")
    assert f"{PEER_IP}:51413" in owner.page.inner_text("table.peers").replace("\n", "")
    assert owner.page.locator("#history-heading").count() == 1
    owner.page.click("details.edit-tags summary")
    owner.page.fill("input[name=tags]", "edited, tags")
    with owner.page.expect_navigation():
        owner.page.click("details.edit-tags button[type=submit]")
    assert "Tags saved: edited, tags." in owner.page.inner_text("main")
    assert "#edited" in owner.page.inner_text("dl.facts")
    owner.assert_no_console_errors("tags")


def test_feeds_page_and_security_block(visit: Any, site: SiteData):
    member = visit("member")
    member.check("/feeds/", "feeds")
    urls = member.page.locator("dl.feeds code").all_inner_texts()
    assert len(urls) >= 4 and all("/feeds/" in u for u in urls)
    rss = member.page.request.get(urls[0].replace(settings.PBTS_BASE_URL, site.url))
    assert rss.status == 200 and b"<rss" in rss.body()
    member.check("/profile/security/", "security-feed-key")
    with member.page.expect_navigation():
        member.page.click("button:has-text('Replace feed key')")
    assert "Your feed key was replaced" in member.page.inner_text("main")
    assert member.page.request.get(urls[0].replace(settings.PBTS_BASE_URL, site.url)).status == 404
    member.check("/feeds/", "feeds-after-reset")
