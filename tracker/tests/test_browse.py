"""Browse: filters, sorting in both directions, tags, bookmarks (pages and API), with the
attacks on each (bad values, another member's bookmarks, tags by a stranger)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import InvalidInput
from core.models import AuditLog
from tracker import announce_runtime
from tracker.models import (
    Bookmark,
    ClientPrefix,
    FeedKey,
    Tag,
    Torrent,
    TorrentHistory,
    TorrentStatus,
)
from tracker.services.browse import bookmark_set, feed_key_get, tags_parse, torrent_tags_set
from tracker.services.members import member_api_token, member_ban
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.test_announce import announce
from tracker.tests.torrents import make_torrent_bytes, upload_torrent

pytestmark = pytest.mark.django_db

TORRENTS = "/api/v1/torrents/"


def api_for(member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


@pytest.fixture
def member(client):
    member = MemberFactory()
    client.force_login(member)
    return member


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


def _names(response) -> list[str]:
    return [t.name for t in response.context["page"].object_list]


def _api_names(member, query: str) -> list[str]:
    response = api_for(member).get(f"{TORRENTS}?{query}")
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def catalogue(staff):
    """Four torrents with distinct sizes, counts, dates, uploaders, categories and tags."""
    films, music = CategoryFactory(slug="films", name="Films"), CategoryFactory(slug="music")
    other = MemberFactory(username="Uploader2")
    rows = [
        ("Alpha", 200_000, films, staff, (9, 1, 4), ["sci-fi"]),
        ("bravo", 900_000, music, other, (1, 7, 2), ["jazz", "live"]),
        ("Charlie", 50_000, films, other, (5, 3, 9), ["sci-fi", "hd"]),
        ("delta", 400_000, music, staff, (0, 0, 0), []),
    ]
    made = {}
    start = timezone.now() - timedelta(days=10)
    for i, (name, size, category, uploader, (s, leech, snatch), tags) in enumerate(rows):
        torrent = upload_torrent(uploader, name=name, size=size, category=category)
        Torrent.objects.filter(pk=torrent.pk).update(
            seeders=s,
            leechers=leech,
            snatches=snatch,
            created_at=start + timedelta(days=i),
            is_freeleech=name in ("bravo", "delta"),
        )
        if tags:
            torrent_tags_set(torrent=torrent, actor=uploader, tags=tags)
        made[name] = torrent
    return made


# --- Sorting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("name", "", ["Alpha", "bravo", "Charlie", "delta"]),
        ("name", "desc", ["delta", "Charlie", "bravo", "Alpha"]),
        ("size", "", ["bravo", "delta", "Alpha", "Charlie"]),
        ("size", "asc", ["Charlie", "Alpha", "delta", "bravo"]),
        ("seeders", "desc", ["Alpha", "Charlie", "bravo", "delta"]),
        ("seeders", "asc", ["delta", "bravo", "Charlie", "Alpha"]),
        ("leechers", "desc", ["bravo", "Charlie", "Alpha", "delta"]),
        ("leechers", "asc", ["delta", "Alpha", "Charlie", "bravo"]),
        ("snatches", "desc", ["Charlie", "Alpha", "bravo", "delta"]),
        ("snatches", "asc", ["delta", "bravo", "Alpha", "Charlie"]),
        ("date", "", ["delta", "Charlie", "bravo", "Alpha"]),
        ("date", "asc", ["Alpha", "bravo", "Charlie", "delta"]),
    ],
)
def test_every_column_sorts_both_ways_on_page_and_api(
    client, member, catalogue, sort, order, expected
):
    params = {"sort": sort, **({"order": order} if order else {})}
    assert _names(client.get(reverse("torrent_list"), params)) == expected
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert _api_names(member, query) == expected


def test_column_headers_link_to_the_other_direction(client, member, catalogue):
    body = client.get(reverse("torrent_list"), {"sort": "size", "order": "desc", "tag": "sci-fi"})
    html = body.content.decode()
    # The current column flips; another column starts at its natural direction; filters stay.
    assert "?sort=size&amp;order=asc&amp;tag=sci-fi" in html
    assert "?sort=name&amp;order=asc&amp;tag=sci-fi" in html
    columns = body.context["columns"]
    assert columns["size"] == {"label": "Size", "next": "asc", "current": "desc"}
    assert columns["name"]["next"] == "asc" and columns["name"]["current"] == ""
    assert columns["seeders"]["next"] == "desc"
    assert 'aria-sort="descending"' in html


# --- Filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "films"}, ["Charlie", "Alpha"]),
        ({"category": "nope"}, []),
        ({"freeleech": "true"}, ["delta", "bravo"]),
        ({"freeleech": "false"}, ["Charlie", "Alpha"]),
        ({"uploader": "uploader2"}, ["Charlie", "bravo"]),
        ({"tag": "sci-fi"}, ["Charlie", "Alpha"]),
        ({"tag": "SCI FI"}, ["Charlie", "Alpha"]),  # normalised like stored tags
        ({"tag": "jazz", "freeleech": "true"}, ["bravo"]),
        ({"q": "char"}, ["Charlie"]),
        ({"category": "music", "sort": "size", "order": "asc"}, ["delta", "bravo"]),
    ],
)
def test_filters_on_page_and_api(client, member, catalogue, params, expected):
    assert _names(client.get(reverse("torrent_list"), params)) == expected
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert _api_names(member, query) == expected


def test_mine_snatched_and_bookmarked_are_the_callers_own(client, member, catalogue):
    other = MemberFactory()
    TorrentHistory.objects.create(
        member=member, torrent=catalogue["bravo"], completed_at=timezone.now()
    )
    TorrentHistory.objects.create(member=member, torrent=catalogue["Alpha"])  # not completed
    TorrentHistory.objects.create(
        member=other, torrent=catalogue["Charlie"], completed_at=timezone.now()
    )
    bookmark_set(member=member, torrent=catalogue["delta"], bookmarked=True)
    bookmark_set(member=other, torrent=catalogue["Alpha"], bookmarked=True)
    assert _names(client.get(reverse("torrent_list"), {"mine": "snatched"})) == ["bravo"]
    assert _names(client.get(reverse("torrent_list"), {"mine": "bookmarked"})) == ["delta"]
    assert _api_names(member, "mine=snatched") == ["bravo"]
    assert _api_names(member, "mine=bookmarked") == ["delta"]
    assert _api_names(other, "mine=bookmarked") == ["Alpha"]


def test_mine_seeding_and_leeching_come_from_the_peer_store(client, member, catalogue, monkeypatch):
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    for reply in (
        announce(client, member, catalogue["Alpha"], left=0),
        announce(client, member, catalogue["bravo"], peer=b"-TR4060-leech", left=1000),
        announce(client, MemberFactory(), catalogue["Charlie"], left=0),  # someone else's
    ):
        assert b"failure reason" not in reply, reply
    assert _names(client.get(reverse("torrent_list"), {"mine": "seeding"})) == ["Alpha"]
    assert _names(client.get(reverse("torrent_list"), {"mine": "leeching"})) == ["bravo"]
    assert _api_names(member, "mine=seeding") == ["Alpha"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "evil"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"mine": "everyone"}, "mine"),
        ({"tag": "bad/tag!"}, "tag"),
        ({"tag": "x" * 40}, "tag"),
        ({"q": "a\x00b"}, "q"),
        ({"uploader": "u" * 151}, "uploader"),
    ],
)
def test_bad_values_are_a_form_error_on_the_page_and_a_400_on_the_api(
    client, member, catalogue, params, field
):
    response = client.get(reverse("torrent_list"), params)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    # The bad value is ignored: the list is the unfiltered one, newest first.
    assert _names(response) == ["delta", "Charlie", "bravo", "Alpha"]
    assert 'class="error"' in response.content.decode()
    api = api_for(member).get(TORRENTS, params)
    assert api.status_code == 400
    assert field in api.json()


def test_junk_freeleech_and_page_values_never_fail(client, member, catalogue):
    assert client.get(reverse("torrent_list"), {"freeleech": "maybe"}).status_code == 200
    assert client.get(reverse("torrent_list"), {"page": "-1"}).status_code == 200
    assert api_for(member).get(TORRENTS, {"freeleech": "maybe"}).status_code in (200, 400)


def test_list_rows_have_download_link_tags_and_bookmark_buttons(client, member, catalogue):
    bookmark_set(member=member, torrent=catalogue["Alpha"], bookmarked=True)
    html = client.get(reverse("torrent_list")).content.decode()
    for torrent in catalogue.values():
        assert reverse("torrent_download", args=[torrent.pk]) in html
        assert reverse("bookmark_toggle", args=[torrent.pk]) in html
    assert "#sci-fi" in html and "?tag=sci-fi" in html
    assert "★ Bookmarked" in html and html.count("☆ Bookmark") == 3


@pytest.mark.parametrize("count", [3, 30])
def test_list_query_count_does_not_grow_with_rows(
    client, member, staff, count, django_assert_num_queries
):
    category = CategoryFactory()
    for i in range(count):
        torrent = upload_torrent(staff, name=f"Item {i}", category=category)
        torrent_tags_set(torrent=torrent, actor=staff, tags=[f"t{i}", "common"])
        if i % 2:
            bookmark_set(member=member, torrent=torrent, bookmarked=True)
    # Session, member, count, page rows, their tags, the member's bookmarks among them, the
    # header's unread notifications, categories (the select).
    with django_assert_num_queries(8):
        response = client.get(reverse("torrent_list"), {"sort": "seeders", "tag": "common"})
    assert len(response.context["page"].object_list) == count


def test_list_paginates_keeping_filters(client, member, staff):
    for i in range(51):
        upload_torrent(staff, name=f"Pack {i:02d}", size=10_000 + i)
    first = client.get(reverse("torrent_list"), {"q": "pack", "sort": "name", "order": "desc"})
    assert len(first.context["page"].object_list) == 50
    assert "?q=pack&amp;sort=name&amp;order=desc&amp;page=2" in first.content.decode()
    second = client.get(
        reverse("torrent_list"), {"q": "pack", "sort": "name", "order": "desc", "page": 2}
    )
    assert _names(second) == ["Pack 00"]


def test_api_schema_documents_the_filters(client, staff):
    client.force_login(staff)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    params = {p["name"] for p in schema["paths"]["/api/v1/torrents/"]["get"]["parameters"]}
    assert {"q", "category", "freeleech", "uploader", "tag", "mine", "sort", "order"} <= params
    for path in (
        "/api/v1/torrents/{id}/peers/",
        "/api/v1/torrents/{id}/snatches/",
        "/api/v1/torrents/{id}/tags/",
        "/api/v1/torrents/{id}/bookmark/",
        "/api/v1/bookmarks/",
        "/api/v1/tags/",
    ):
        assert path in schema["paths"], path


# --- Tags -------------------------------------------------------------------------------------


def test_tags_are_normalised_deduplicated_and_bounded():
    assert tags_parse("Sci Fi, HD  hd,live_show") == ["sci", "fi", "hd", "live-show"]
    assert tags_parse(["Sci Fi", "sci-fi", " "]) == ["sci-fi"]
    for bad in ("a/b", "x" * 33, "über"):
        with pytest.raises(InvalidInput):
            tags_parse(bad)
    with override_settings(PBTS_MAX_TAGS=3), pytest.raises(InvalidInput, match="At most 3"):
        tags_parse("a b c d")


def test_uploader_sets_tags_and_a_stranger_cannot(client, member, staff):
    torrent = upload_torrent(member, name="Mine")
    response = client.post(reverse("torrent_tags", args=[torrent.pk]), {"tags": "Rock, LIVE"})
    assert response.status_code == 302
    assert sorted(torrent.tags.values_list("name", flat=True)) == ["live", "rock"]
    assert not AuditLog.objects.filter(action="torrent_tags").exists()  # own torrent

    stranger = MemberFactory()
    client.force_login(stranger)
    refused = client.post(reverse("torrent_tags", args=[torrent.pk]), {"tags": "spam"})
    assert refused.status_code == 403
    assert sorted(torrent.tags.values_list("name", flat=True)) == ["live", "rock"]
    assert (
        api_for(stranger)
        .put(f"{TORRENTS}{torrent.pk}/tags/", {"tags": ["spam"]}, format="json")
        .status_code
        == 403
    )
    # The detail page offers the tags form to the uploader only (and staff).
    assert client.get(reverse("torrent_detail", args=[torrent.pk])).context["tags_form"] is None


def test_staff_tag_edit_is_audited_and_bad_tags_are_refused(client, member, staff):
    torrent = upload_torrent(member, name="Theirs")
    response = api_for(staff).put(
        f"{TORRENTS}{torrent.pk}/tags/", {"tags": ["Jazz", "jazz", "Live Set"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"tags": ["jazz", "live-set"]}
    entry = AuditLog.objects.get(action="torrent_tags")
    assert entry.actor == staff and entry.new_values == {"tags": ["jazz", "live-set"]}
    bad = api_for(staff).put(f"{TORRENTS}{torrent.pk}/tags/", {"tags": ["no/way"]}, format="json")
    assert bad.status_code == 400 and "tags" in bad.json()
    with override_settings(PBTS_MAX_TAGS=2):
        many = api_for(member).put(
            f"{TORRENTS}{torrent.pk}/tags/", {"tags": ["a", "b", "c"]}, format="json"
        )
    assert many.status_code == 400 and "tags" in many.json()
    # A bad tag on the page is a message, not an error page; nothing changes.
    client.force_login(member)
    page = client.post(reverse("torrent_tags", args=[torrent.pk]), {"tags": "ok, b@d"}, follow=True)
    assert page.status_code == 200 and "may use only" in page.content.decode()
    assert sorted(torrent.tags.values_list("name", flat=True)) == ["jazz", "live-set"]


def test_upload_with_tags_on_page_and_api(client, member):
    data = make_torrent_bytes(name="tagged.bin")
    response = client.post(
        reverse("torrent_upload"),
        {
            "file": SimpleUploadedFile("t.torrent", data),
            "category": CategoryFactory().pk,
            "tags": "Drama, 1080p",
        },
    )
    assert response.status_code == 302
    torrent = Torrent.objects.get(name="tagged.bin")
    assert sorted(torrent.tags.values_list("name", flat=True)) == ["1080p", "drama"]

    bad = client.post(
        reverse("torrent_upload"),
        {"file": SimpleUploadedFile("u.torrent", make_torrent_bytes(name="u.bin")), "tags": "a/b"},
    )
    assert bad.status_code == 200 and "tags" in bad.context["form"].errors
    assert not Torrent.objects.filter(name="u.bin").exists()

    api = api_for(member).post(
        TORRENTS,
        {"file": SimpleUploadedFile("v.torrent", make_torrent_bytes(name="v.bin")), "tags": "x y"},
        format="multipart",
    )
    assert api.status_code == 201, api.content
    assert api.json()["tags"] == ["x", "y"]
    refused = api_for(member).post(
        TORRENTS,
        {"file": SimpleUploadedFile("w.torrent", make_torrent_bytes(name="w.bin")), "tags": "!"},
        format="multipart",
    )
    assert refused.status_code == 400 and "tags" in refused.json()
    assert not Torrent.objects.filter(name="w.bin").exists()


def test_tag_list_api_counts_approved_torrents_only(member, staff):
    shown = upload_torrent(staff, name="shown")
    hidden = upload_torrent(staff, name="hidden")
    torrent_tags_set(torrent=shown, actor=staff, tags=["common", "shown"])
    torrent_tags_set(torrent=hidden, actor=staff, tags=["common", "secret"])
    torrent_moderate(torrent=hidden, actor=staff, status=TorrentStatus.REJECTED, reason="no")
    rows = api_for(member).get("/api/v1/tags/").json()["results"]
    assert rows == [{"name": "common", "torrents": 1}, {"name": "shown", "torrents": 1}]
    assert Tag.objects.filter(name="secret").exists()


# --- Bookmarks --------------------------------------------------------------------------------


def test_bookmark_toggle_from_the_torrent_page_and_the_list(client, member, staff):
    torrent = upload_torrent(staff, name="Keep")
    url = reverse("bookmark_toggle", args=[torrent.pk])
    detail = reverse("torrent_detail", args=[torrent.pk])
    assert client.post(url, {"action": "add"})["Location"] == detail
    assert Bookmark.objects.filter(member=member, torrent=torrent).count() == 1
    client.post(url, {"action": "add"})  # a reload does not flip it back
    assert Bookmark.objects.filter(member=member, torrent=torrent).count() == 1
    assert client.get(detail).context["is_bookmarked"] is True
    back = client.post(url, {"action": "remove", "next": "/torrents/?sort=name"})
    assert back["Location"] == "/torrents/?sort=name"
    assert not Bookmark.objects.exists()
    client.post(url)  # no action: toggles
    assert Bookmark.objects.count() == 1
    # next= to another site is ignored.
    offsite = client.post(url, {"action": "remove", "next": "https://evil.example/"})
    assert offsite["Location"] == detail
    assert client.get(url).status_code == 405


def test_bookmarks_page_lists_only_my_bookmarks(client, member, staff):
    mine = upload_torrent(staff, name="Mine to keep")
    theirs = upload_torrent(staff, name="Their secret pick")
    other = MemberFactory()
    bookmark_set(member=member, torrent=mine, bookmarked=True)
    bookmark_set(member=other, torrent=theirs, bookmarked=True)
    html = client.get(reverse("bookmark_list")).content.decode()
    assert "Mine to keep" in html and "Their secret pick" not in html
    api = api_for(member).get("/api/v1/bookmarks/").json()
    assert [row["torrent"]["name"] for row in api["results"]] == ["Mine to keep"]
    # Another member's bookmarks are nowhere: not on their profile, not in the API.
    assert (
        "Their secret pick"
        not in client.get(reverse("member_detail", args=[other.username])).content.decode()
    )


def test_bookmark_of_a_torrent_i_cannot_see_is_404(client, member, staff):
    pending = upload_torrent(staff, name="Pending")
    torrent_moderate(torrent=pending, actor=staff, status=TorrentStatus.REJECTED, reason="x")
    assert client.post(reverse("bookmark_toggle", args=[pending.pk])).status_code == 404
    assert api_for(member).put(f"{TORRENTS}{pending.pk}/bookmark/").status_code == 404
    assert not Bookmark.objects.exists()
    # A bookmark of a torrent rejected later disappears from the list.
    kept = upload_torrent(staff, name="Later rejected")
    bookmark_set(member=member, torrent=kept, bookmarked=True)
    torrent_moderate(torrent=kept, actor=staff, status=TorrentStatus.REJECTED, reason="x")
    assert client.get(reverse("bookmark_list")).context["page"].paginator.count == 0


def test_bookmark_api_put_and_delete_are_idempotent(member, staff):
    torrent = upload_torrent(staff)
    client = api_for(member)
    url = f"{TORRENTS}{torrent.pk}/bookmark/"
    assert client.put(url).json() == {"bookmarked": True}
    assert client.put(url).json() == {"bookmarked": True}
    assert Bookmark.objects.filter(member=member).count() == 1
    assert client.delete(url).json() == {"bookmarked": False}
    assert client.delete(url).json() == {"bookmarked": False}
    assert not Bookmark.objects.exists()


def test_banned_member_cannot_bookmark(client, member, staff):
    torrent = upload_torrent(staff)
    token_client = api_for(member)
    member_ban(member=member, actor=staff, reason="cheating")
    assert token_client.put(f"{TORRENTS}{torrent.pk}/bookmark/").status_code == 403
    assert client.post(reverse("bookmark_toggle", args=[torrent.pk])).status_code == 403
    assert not Bookmark.objects.exists()


# --- Admin ------------------------------------------------------------------------------------


def test_admin_tag_rename_is_audited_and_feed_keys_are_never_shown(staff):
    client = Client()
    client.force_login(staff)
    torrent = upload_torrent(staff)
    torrent_tags_set(torrent=torrent, actor=staff, tags=["tpyo"])
    tag = Tag.objects.get(name="tpyo")
    response = client.post(
        reverse("admin:tracker_tag_change", args=[tag.pk]), {"name": "typo"}, follow=True
    )
    assert response.status_code == 200
    assert list(torrent.tags.values_list("name", flat=True)) == ["typo"]
    entry = AuditLog.objects.get(action="tag_change")
    assert entry.actor == staff and entry.new_values == {"name": "typo"}

    member = MemberFactory()
    key = feed_key_get(member=member)
    bookmark_set(member=member, torrent=torrent, bookmarked=True)
    feed_key = FeedKey.objects.get(member=member)
    for url in (
        reverse("admin:tracker_feedkey_changelist"),
        reverse("admin:tracker_feedkey_change", args=[feed_key.pk]),
        reverse("admin:tracker_bookmark_changelist"),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert key not in page.content.decode(), url
    assert (
        client.post(reverse("admin:tracker_feedkey_delete", args=[feed_key.pk])).status_code == 403
    )
