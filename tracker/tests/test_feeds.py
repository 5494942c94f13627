"""RSS/Atom feeds authenticated by the feed key, and their download links. Attacks: a wrong
key, the passkey used as a feed key, another member's key, a reset key, a banned member's
key, unapproved torrents, keys in logs."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from fastbencode import bdecode

from core.logging import SecretMaskFilter, mask_secrets
from tracker.models import FeedKey, TorrentStatus
from tracker.services.browse import bookmark_set, feed_key_get, feed_key_reset
from tracker.services.members import member_ban, member_set_downloading
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def member():
    return MemberFactory(username="reader")


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


def _rss_items(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/rss+xml")
    root = ET.fromstring(response.content)
    return [
        {
            "title": item.findtext("title"),
            "link": item.findtext("link"),
            "enclosure": item.find("enclosure").get("url"),
            "type": item.find("enclosure").get("type"),
        }
        for item in root.iter("item")
    ]


def _path(url: str) -> str:
    assert url.startswith(settings.PBTS_BASE_URL), url
    return url[len(settings.PBTS_BASE_URL) :]


def test_rss_lists_new_approved_torrents_with_download_links(client, member, staff):
    key = feed_key_get(member=member)
    old = upload_torrent(staff, name="Older")
    new = upload_torrent(staff, name="Newer")
    pending = upload_torrent(staff, name="Rejected one")
    torrent_moderate(torrent=pending, actor=staff, status=TorrentStatus.REJECTED, reason="x")
    items = _rss_items(client.get(reverse("feed_rss", args=[key])))
    assert [i["title"] for i in items] == ["Newer", "Older"]
    link = reverse("feed_download", args=[key, new.pk])
    assert _path(items[0]["link"]) == link and _path(items[0]["enclosure"]) == link
    assert items[0]["type"] == "application/x-bittorrent"
    assert member.passkey not in client.get(reverse("feed_rss", args=[key])).content.decode()
    # The item's download link needs no session and carries the member's passkey.
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-bittorrent"
    assert response["Cache-Control"] == "private, no-store"
    announce = bdecode(response.content)[b"announce"].decode()
    assert announce.endswith(f"/announce/{member.passkey}")
    assert old.pk != new.pk


def test_atom_category_and_bookmark_feeds(client, member, staff):
    key = feed_key_get(member=member)
    films = CategoryFactory(slug="films", name="Films")
    film = upload_torrent(staff, name="A film", category=films)
    other = upload_torrent(staff, name="An album")
    bookmark_set(member=member, torrent=other, bookmarked=True)
    someone = MemberFactory()
    bookmark_set(member=someone, torrent=film, bookmarked=True)

    atom = client.get(reverse("feed_atom", args=[key]))
    assert atom.status_code == 200 and atom["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(atom.content)
    titles = [e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")]
    assert titles == ["An album", "A film"]

    category = _rss_items(client.get(reverse("feed_rss_category", args=[key, "films"])))
    assert [i["title"] for i in category] == ["A film"]
    atom_cat = client.get(reverse("feed_atom_category", args=[key, "films"]))
    assert b"A film" in atom_cat.content and b"An album" not in atom_cat.content
    assert client.get(reverse("feed_rss_category", args=[key, "nope"])).status_code == 404

    mine = _rss_items(client.get(reverse("feed_rss_bookmarks", args=[key])))
    assert [i["title"] for i in mine] == ["An album"]  # never someone else's bookmarks
    theirs = _rss_items(
        client.get(reverse("feed_rss_bookmarks", args=[feed_key_get(member=someone)]))
    )
    assert [i["title"] for i in theirs] == ["A film"]
    assert client.get(reverse("feed_atom_bookmarks", args=[key])).status_code == 200


def test_feed_item_count_is_bounded(client, member, staff, settings):
    settings.PBTS_FEED_ITEMS = 3
    for i in range(5):
        upload_torrent(staff, name=f"t{i}")
    items = _rss_items(client.get(reverse("feed_rss", args=[feed_key_get(member=member)])))
    assert [i["title"] for i in items] == ["t4", "t3", "t2"]


@pytest.mark.parametrize(
    "key", ["nope", "x" * 64, "y" * 500, "%00", "..", "' OR 1=1 --", "\u00e9\u00e9"]
)
def test_a_wrong_key_is_404_never_500(client, member, staff, key):
    torrent = upload_torrent(staff)
    feed_key_get(member=member)
    for url in (
        f"/feeds/{key}/rss/",
        f"/feeds/{key}/atom/",
        f"/feeds/{key}/rss/bookmarks/",
        f"/feeds/{key}/download/{torrent.pk}/",
    ):
        assert client.get(url).status_code == 404, url


def test_the_passkey_is_not_a_feed_key(client, member, staff):
    torrent = upload_torrent(staff)
    feed_key_get(member=member)
    assert client.get(reverse("feed_rss", args=[member.passkey])).status_code == 404
    assert client.get(f"/feeds/{member.passkey}/download/{torrent.pk}/").status_code == 404
    assert feed_key_get(member=member) != member.passkey


def test_a_key_reads_only_its_own_members_feed_and_passkey(client, member, staff):
    """Another member's key gives that member's feed and passkey, never the caller's: the
    key is the credential, and one member's key cannot reach another's data."""
    torrent = upload_torrent(staff)
    other = MemberFactory()
    other_key = feed_key_get(member=other)
    data = client.get(reverse("feed_download", args=[other_key, torrent.pk])).content
    assert other.passkey.encode() in data and member.passkey.encode() not in data
    keys = {feed_key_get(member=m) for m in (member, other, staff)}
    assert len(keys) == 3 and all(len(k) >= 32 for k in keys)


def test_reset_invalidates_the_old_key_at_once(client, member, staff):
    torrent = upload_torrent(staff)
    old = feed_key_get(member=member)
    client.force_login(member)
    assert client.get(reverse("feed_key_reset")).status_code == 405  # POST only
    response = client.post(reverse("feed_key_reset"))
    assert response.status_code == 302 and response["Location"] == reverse("feed_list")
    new = FeedKey.objects.get(member=member).key
    assert new != old
    assert client.get(reverse("feed_rss", args=[old])).status_code == 404
    assert client.get(reverse("feed_download", args=[old, torrent.pk])).status_code == 404
    assert client.get(reverse("feed_rss", args=[new])).status_code == 200
    assert client.get(reverse("feed_download", args=[new, torrent.pk])).status_code == 200
    # The service on its own too, and the passkey is untouched by it.
    passkey = member.passkey
    assert feed_key_reset(member=member) != new
    member.refresh_from_db()
    assert member.passkey == passkey


def test_reset_needs_a_logged_in_member_and_csrf(member):
    anonymous = Client()
    response = anonymous.post(reverse("feed_key_reset"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    old = feed_key_get(member=member)
    assert strict.post(reverse("feed_key_reset")).status_code == 403
    assert FeedKey.objects.get(member=member).key == old


def test_banned_or_inactive_members_key_is_refused(client, member, staff):
    torrent = upload_torrent(staff)
    key = feed_key_get(member=member)
    member_ban(member=member, actor=staff, reason="cheating")
    assert client.get(reverse("feed_rss", args=[key])).status_code == 403
    assert client.get(reverse("feed_atom_bookmarks", args=[key])).status_code == 403
    assert client.get(reverse("feed_download", args=[key, torrent.pk])).status_code == 403

    quiet = MemberFactory()
    quiet_key = feed_key_get(member=quiet)
    quiet.is_active = False
    quiet.save(update_fields=["is_active"])
    assert client.get(reverse("feed_rss", args=[quiet_key])).status_code == 403
    assert client.get(reverse("feed_download", args=[quiet_key, torrent.pk])).status_code == 403


def test_feed_download_follows_the_download_rules(client, member, staff):
    key = feed_key_get(member=member)
    torrent = upload_torrent(staff)
    hidden = upload_torrent(staff, name="Rejected")
    torrent_moderate(torrent=hidden, actor=staff, status=TorrentStatus.REJECTED, reason="x")
    assert client.get(reverse("feed_download", args=[key, hidden.pk])).status_code == 404
    assert client.get(reverse("feed_download", args=[key, 999999])).status_code == 404
    member_set_downloading(member=member, actor=staff, enabled=False, reason="ratio")
    refused = client.get(reverse("feed_download", args=[key, torrent.pk]))
    assert refused.status_code == 403 and b"disabled" in refused.content


def test_feed_page_shows_the_members_urls_and_security_page_links_it(client, member, staff):
    CategoryFactory(slug="films", name="Films")
    client.force_login(member)
    html = client.get(reverse("feed_list")).content.decode()
    key = FeedKey.objects.get(member=member).key
    base = settings.PBTS_BASE_URL
    for name, args in (
        ("feed_rss", [key]),
        ("feed_atom", [key]),
        ("feed_rss_bookmarks", [key]),
        ("feed_atom_category", [key, "films"]),
    ):
        assert f"{base}{reverse(name, args=args)}" in html
    assert member.passkey not in html
    security = client.get(reverse("security")).content.decode()
    assert reverse("feed_key_reset") in security and "Feed key" in security
    # Another member's page never shows this key.
    other = MemberFactory()
    client.force_login(other)
    assert key not in client.get(reverse("feed_list")).content.decode()
    assert key not in client.get(reverse("member_detail", args=[member.username])).content.decode()


def test_feed_keys_are_masked_in_logs(caplog):
    key = "AbC-123_secretfeedkey"
    assert key not in mask_secrets(f"GET /feeds/{key}/rss/ HTTP/1.1 200")
    assert key not in mask_secrets(f"https://t.example/feeds/{key}/download/5/")
    assert mask_secrets("POST /feeds/reset/ 302") == "POST /feeds/reset/ 302"
    record = logging.LogRecord("x", logging.INFO, "f", 1, "Not Found: /feeds/%s/rss/", (key,), None)
    SecretMaskFilter().filter(record)
    assert key not in record.getMessage()
