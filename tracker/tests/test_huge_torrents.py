"""Huge torrents (issue 14): the nesting depth and the file count are capped at upload (raw
bytes scanned before decoding), file lists are paginated on the page, in the API and in the
admin, and downloads splice the member's keys in front of the stored bytes without decoding."""

from __future__ import annotations

import hashlib
import importlib
import time

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from fastbencode import Bencached, bdecode, bencode
from rest_framework.test import APIClient

from core.errors import InvalidInput
from tracker import metainfo
from tracker.metainfo import MetainfoError, check_structure, encode_for_member, parse, rewrite
from tracker.models import Torrent, TorrentFile
from tracker.services.members import member_api_token
from tracker.services.torrents import torrent_download, torrent_upload
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import make_torrent_bytes, upload_torrent

pytestmark = pytest.mark.django_db

MAX = settings.PBTS_MAX_TORRENT_BYTES
ANNOUNCE = "https://pbts.example/announce/0123456789abcdef0123456789abcdef"
COMMENT = "https://pbts.example/torrents/7/"


def nested(levels: int) -> Bencached:
    """A list nested ``levels`` deep, as raw bencode (never built as Python lists)."""
    return Bencached(b"l" * levels + b"e" * levels)


def deep_torrent(levels: int) -> bytes:
    """A valid torrent whose ``info`` has a key holding a list nested ``levels`` deep: the
    whole file nests ``levels + 2`` deep (top-level dictionary, ``info``, the list)."""
    return make_torrent_bytes(extra_info={"zz": nested(levels)})


def many_files(count: int) -> list[tuple[str, int]]:
    return [(f"d{i // 1000}/f{i:06d}", 1) for i in range(count)]


def _api(member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


@pytest.fixture
def member(client):
    member = MemberFactory()
    client.force_login(member)
    return member


# --- Nesting depth, checked before decoding ------------------------------------------------


def test_a_list_nested_a_million_deep_is_refused_before_decoding(monkeypatch):
    """The issue's attack: accepted before, and 5 s per download. Now refused after reading
    ~100 bytes: the decoder is never called."""
    data = deep_torrent(1_000_000)
    assert len(data) > 2_000_000

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(metainfo, "bdecode", no_decoding)
    started = time.perf_counter()
    with pytest.raises(MetainfoError) as err:
        parse(data, max_bytes=MAX)
    assert time.perf_counter() - started < 0.05
    assert "nested too deeply (more than 100 levels" in str(err.value)


def test_the_depth_limit_is_exact_and_counts_the_top_level():
    limit = metainfo.DEFAULT_MAX_DEPTH
    assert parse(deep_torrent(limit - 2), max_bytes=MAX).name == "file.bin"
    with pytest.raises(MetainfoError, match="nested too deeply"):
        parse(deep_torrent(limit - 1), max_bytes=MAX)
    assert parse(deep_torrent(40), max_bytes=MAX, max_depth=42)
    with pytest.raises(MetainfoError, match="more than 41 levels"):
        parse(deep_torrent(40), max_bytes=MAX, max_depth=41)


def test_the_depth_scan_skips_string_contents():
    """Bytes 'l', 'd' and 'e' inside strings (names, piece hashes) are not structure."""
    data = make_torrent_bytes(name="l" * 500, extra_info={"comment": "d" * 300 + "e" * 5})
    assert parse(data, max_bytes=MAX, max_depth=3).name == "l" * 500
    check_structure(b"d3:lll" + b"l" * 10 + b"e" * 10 + b"e", max_depth=11, max_tokens=12)
    with pytest.raises(MetainfoError):
        check_structure(b"d3:lll" + b"l" * 10 + b"e" * 10 + b"e", max_depth=10, max_tokens=12)


@pytest.mark.parametrize(
    "data",
    [b"", b"x", b"i12", b"d", b"lll", b"d99999999999999999999:x", b"3:abcllllllll", b"d1:a"],
)
def test_the_depth_scan_leaves_malformed_input_to_the_decoder(data):
    check_structure(data, max_depth=3, max_tokens=10)
    with pytest.raises(MetainfoError, match=r"not a valid torrent|not a torrent"):
        parse(data, max_bytes=MAX, max_depth=3)


def test_a_hybrid_with_the_deepest_path_fits_the_default_depth():
    path = "/".join(f"d{i}" for i in range(metainfo.MAX_PATH_DEPTH - 1)) + "/file.bin"
    meta = parse(make_torrent_bytes(name="deep", files=[(path, 5)], hybrid=True), max_bytes=MAX)
    assert meta.files == ((path, 5),)


def test_service_applies_the_depth_setting(member, settings):
    settings.PBTS_MAX_BENCODE_DEPTH = 10
    with pytest.raises(InvalidInput) as err:
        torrent_upload(uploader=member, data=deep_torrent(9))
    assert err.value.field == "file" and "more than 10 levels" in err.value.message
    assert not Torrent.objects.exists()


def test_a_flood_of_values_is_refused_before_decoding(monkeypatch):
    """Millions of empty lists, shallow: the scan stops at the value budget (100 a file
    allowed), so neither it nor the decoder ever walks the whole flood."""
    data = make_torrent_bytes(extra_info={"zz": Bencached(b"l" + b"le" * 4_000_000 + b"e")})
    monkeypatch.setattr(metainfo, "bdecode", lambda *a: pytest.fail("decoded"))
    started = time.perf_counter()
    with pytest.raises(MetainfoError, match=r"too many entries \(more than 1,010,000"):
        parse(data, max_bytes=MAX)
    assert time.perf_counter() - started < 2


def test_a_hybrid_torrent_with_the_most_files_fits_the_value_budget():
    data = make_torrent_bytes(name="most", files=many_files(10_000), hybrid=True)
    assert len(parse(data, max_bytes=MAX).files) == 10_000


# --- File count ---------------------------------------------------------------------------


def test_too_many_files_are_refused_with_the_count():
    data = make_torrent_bytes(name="big", files=many_files(101))
    with pytest.raises(MetainfoError) as err:
        parse(data, max_bytes=MAX, max_files=100)
    assert str(err.value) == "The torrent lists too many files (101; at most 100 are accepted)."
    assert len(parse(data, max_bytes=MAX, max_files=101).files) == 101


def test_padding_files_do_not_count():
    files = [(f"f{i}", 20_000) for i in range(6)]
    data = make_torrent_bytes(name="pad", files=files, hybrid=True)
    assert len(bdecode(data)[b"info"][b"files"]) == 11  # 6 files, 5 padding files
    assert len(parse(data, max_bytes=MAX, max_files=6).files) == 6


def test_the_default_cap_is_ten_thousand_files():
    assert settings.PBTS_MAX_TORRENT_FILES == metainfo.DEFAULT_MAX_FILES == 10_000
    with pytest.raises(MetainfoError, match="10,001"):
        parse(make_torrent_bytes(name="big", files=many_files(10_001)), max_bytes=MAX)


def test_upload_form_and_api_show_the_file_cap_on_the_file_field(client, member, settings):
    settings.PBTS_MAX_TORRENT_FILES = 3
    data = make_torrent_bytes(name="four", files=many_files(4))
    response = client.post(
        reverse("torrent_upload"),
        {"file": SimpleUploadedFile("t.torrent", data), "category": CategoryFactory().pk},
    )
    assert response.status_code == 200
    assert "too many files (4; at most 3" in " ".join(response.context["form"].errors["file"])
    response = _api(member).post(
        "/api/v1/torrents/", {"file": SimpleUploadedFile("t.torrent", data)}
    )
    assert response.status_code == 400
    assert "too many files (4; at most 3" in response.json()["file"][0]
    assert not Torrent.objects.exists()


# --- Downloads are spliced, never decoded ---------------------------------------------------


def _stored(data: bytes, **limits) -> bytes:
    return rewrite(parse(data, max_bytes=MAX, **limits), source="PBTS").to_bytes()


def test_rewrite_drops_every_top_level_key_up_to_comment():
    data = bencode(
        {
            **bdecode(make_torrent_bytes()),
            b"AAA": b"upper case sorts first",
            b"azureus_properties": {b"dht_backup_enable": 1},
            b"comment": b"uploader's comment",
            b"comment.utf-8": b"kept",
            b"url-list": [b"https://mirror.example/file.bin"],
        }
    )
    stored = bdecode(_stored(data))
    assert [key for key in stored if key <= b"comment"] == []
    assert set(stored) == {b"comment.utf-8", b"created by", b"creation date", b"info", b"url-list"}


def test_download_splices_without_decoding_and_keeps_the_info_hash(monkeypatch):
    stored = _stored(make_torrent_bytes(hybrid=True, files=[("a", 20_000), ("b", 9)]))
    info_hash = hashlib.sha1(bencode(bdecode(stored)[b"info"])).hexdigest()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(metainfo, "bdecode", no_decoding)
    monkeypatch.setattr(metainfo, "_decode", no_decoding)
    served = encode_for_member(
        memoryview(stored), announce_url=ANNOUNCE, comment=COMMENT, other_urls=("udp://u/a",)
    )
    monkeypatch.undo()
    top = bdecode(served)  # strict: sorted keys, nothing trailing
    assert list(top)[:3] == [b"announce", b"announce-list", b"comment"]
    assert top[b"announce"] == ANNOUNCE.encode()
    assert top[b"announce-list"] == [[ANNOUNCE.encode(), b"udp://u/a"]]
    assert top[b"comment"] == COMMENT.encode()
    assert hashlib.sha1(bencode(top[b"info"])).hexdigest() == info_hash
    assert served.endswith(stored[1:])
    assert parse(served, max_bytes=MAX).info_hash == info_hash


def test_download_time_does_not_depend_on_what_info_holds():
    """A torrent stored before the caps (a million-deep list in ``info``) downloads in one
    copy: the issue measured 5 s per download."""
    stored = _stored(deep_torrent(1_000_000), max_depth=2_000_000, max_files=10**6)
    started = time.perf_counter()
    served = encode_for_member(stored, announce_url=ANNOUNCE, comment=COMMENT)
    assert time.perf_counter() - started < 0.05
    assert served.endswith(stored[1:])


def test_download_through_the_service_is_spliced(monkeypatch):
    uploader = MemberFactory()
    torrent = upload_torrent(uploader, description="x")
    monkeypatch.setattr(metainfo, "bdecode", lambda *a: pytest.fail("decoded"))
    served = torrent_download(torrent=torrent, member=MemberFactory())
    monkeypatch.undo()
    top = bdecode(served)
    assert hashlib.sha1(bencode(top[b"info"])).hexdigest() == torrent.info_hash
    assert top[b"comment"].decode().endswith(f"/torrents/{torrent.pk}/")


def test_old_stored_files_are_made_spliceable_by_the_migration():
    torrent = upload_torrent(MemberFactory())
    old_style = {
        **bdecode(bytes(torrent.metainfo)),
        b"announce": b"http://old.example/announce",
        b"comment": b"old",
    }
    Torrent.objects.filter(pk=torrent.pk).update(metainfo=bencode(old_style))
    assert not metainfo._spliceable(bytes(Torrent.objects.get(pk=torrent.pk).metainfo))
    migration = importlib.import_module("tracker.migrations.0007_metainfo_without_member_keys")
    migration.drop_member_keys(apps, None)
    stored = bytes(Torrent.objects.get(pk=torrent.pk).metainfo)
    assert metainfo._spliceable(stored)
    assert set(bdecode(stored)) == {b"created by", b"creation date", b"info"}
    assert hashlib.sha1(bencode(bdecode(stored)[b"info"])).hexdigest() == torrent.info_hash


# --- File lists are paginated -------------------------------------------------------------


@pytest.fixture
def big(member):
    return upload_torrent(member, name="big", files=many_files(250))


def test_the_detail_page_lists_one_page_of_files(client, big):
    url = reverse("torrent_detail", args=[big.pk])
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url)
    assert len(queries) < 15
    body = first.content.decode()
    assert body.count('<td class="path">') == 100
    assert "d0/f000000" in body and "d0/f000100" not in body
    assert "Files 1\u2013100 of 250" in body and "?page=2#files-heading" in body
    last = client.get(url, {"page": 3}).content.decode()
    assert last.count('<td class="path">') == 50 and "d0/f000249" in last
    # A page past the end shows the last page, as the torrent list does.
    assert client.get(url, {"page": 99}).content.decode().count('<td class="path">') == 50


def test_the_api_detail_embeds_the_first_files_and_links_the_rest(member, big):
    body = _api(member).get(f"/api/v1/torrents/{big.pk}/").json()
    assert body["file_count"] == 250
    assert len(body["files"]) == 100 and body["files"][0] == {"path": "d0/f000000", "size": 1}
    assert body["files_url"].endswith(f"/api/v1/torrents/{big.pk}/files/")
    page = _api(member).get(body["files_url"], {"page": 2, "page_size": 200}).json()
    assert page["count"] == 250 and len(page["results"]) == 50
    assert page["results"][-1]["path"] == "d0/f000249"
    assert page["next"] is None and page["previous"]


def test_the_api_file_list_follows_visibility(member, settings):
    settings.PBTS_UPLOADS_NEED_APPROVAL = True
    pending = upload_torrent(MemberFactory())
    assert _api(member).get(f"/api/v1/torrents/{pending.pk}/files/").status_code == 404
    assert _api(member).get("/api/v1/torrents/999999/files/").status_code == 404


def test_the_admin_links_the_files_instead_of_inlining_them(client, big):
    staff = MemberFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    other = upload_torrent(staff, name="other")
    page = client.get(reverse("admin:tracker_torrent_change", args=[big.pk])).content.decode()
    assert "d0/f000000" not in page
    link = f"{reverse('admin:tracker_torrentfile_changelist')}?torrent__id__exact={big.pk}"
    assert f'<a href="{link}">250 files</a>' in page
    files = client.get(link)
    assert files.status_code == 200
    assert files.context["cl"].result_count == 250
    assert TorrentFile.objects.filter(torrent=other).exists()
