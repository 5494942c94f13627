"""Torrent services: upload with the private/source rewrite, download, moderation, edits."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import torf
from django.conf import settings
from django.db import IntegrityError
from django.db.models.query import QuerySet
from fastbencode import bdecode, bencode

from core.errors import Conflict, InvalidInput, NotFound, NotPermitted
from core.models import AuditLog
from tracker import authcache, metainfo
from tracker.models import Category, Torrent, TorrentFile, TorrentStatus
from tracker.selectors import member_announce_url, member_udp_announce_url
from tracker.services import members
from tracker.services.torrents import (
    torrent_download,
    torrent_filename,
    torrent_moderate,
    torrent_set_promotion,
    torrent_update,
    torrent_upload,
)
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import ORIGINAL_ANNOUNCE, make_torrent_bytes, upload_torrent

pytestmark = pytest.mark.django_db


def _info_hash(data: bytes | memoryview) -> str:
    return hashlib.sha1(bencode(bdecode(bytes(data))[b"info"])).hexdigest()


def _rewritten_hash(data: bytes) -> str:
    meta = metainfo.parse(data, max_bytes=settings.PBTS_MAX_TORRENT_BYTES)
    return metainfo.rewrite(meta, source=settings.PBTS_TORRENT_SOURCE).info_hash


# --- upload --------------------------------------------------------------------------------


def test_upload_stores_rewritten_torrent_and_files():
    uploader = MemberFactory()
    data = make_torrent_bytes(name="album", files=[("cd1/01.flac", 40_000), ("cover.jpg", 123)])
    torrent = torrent_upload(uploader=uploader, data=data, description="Lossless.")
    torrent.refresh_from_db()
    assert torrent.name == "album"
    assert torrent.description == "Lossless."
    assert torrent.uploader == uploader
    assert torrent.category.slug == "other"
    assert torrent.status == TorrentStatus.APPROVED
    assert (torrent.size, torrent.piece_length, torrent.piece_count) == (40_123, 16384, 3)
    assert torrent.file_count == 2
    assert torrent.is_hybrid is False
    assert list(torrent.files.values_list("path", "size")) == [
        ("cd1/01.flac", 40_000),
        ("cover.jpg", 123),
    ]
    stored = bdecode(bytes(torrent.metainfo))
    assert b"announce" not in stored and b"announce-list" not in stored
    assert stored[b"info"][b"private"] == 1
    assert stored[b"info"][b"source"] == settings.PBTS_TORRENT_SOURCE.encode()
    assert torrent.info_hash == _info_hash(torrent.metainfo)
    assert torrent.info_hash != _info_hash(data)


def test_upload_uses_given_category_and_name():
    category = CategoryFactory(slug="music", name="Music")
    torrent = upload_torrent(
        MemberFactory(), category=category, display_name="  My upload  ", name="raw.bin"
    )
    assert torrent.category == category
    assert torrent.name == "My upload"
    assert metainfo.parse(bytes(torrent.metainfo), max_bytes=10**6).name == "raw.bin"


def test_upload_cuts_long_torrent_name_to_255_characters():
    data = make_torrent_bytes(name="x" * 300)
    torrent = torrent_upload(uploader=MemberFactory(), data=data)
    assert torrent.name == "x" * 255


def test_upload_refuses_too_long_given_name():
    with pytest.raises(InvalidInput) as err:
        upload_torrent(MemberFactory(), display_name="y" * 256)
    assert err.value.field == "name"
    assert not Torrent.objects.exists()


def test_upload_is_pending_when_approval_is_required(settings):
    settings.PBTS_UPLOADS_NEED_APPROVAL = True
    torrent = upload_torrent(MemberFactory())
    assert torrent.status == TorrentStatus.PENDING
    assert authcache.torrent_standing(torrent.info_hash) is None


def test_upload_of_hybrid_torrent_is_tracked_by_v1_hash():
    torrent = upload_torrent(MemberFactory(), hybrid=True, files=[("a", 20_000), ("b", 5)])
    stored = bdecode(bytes(torrent.metainfo))
    assert torrent.is_hybrid is True
    assert b"piece layers" in stored
    assert torrent.info_hash == _info_hash(torrent.metainfo)
    assert torrent.file_count == 2  # the padding file is not listed
    assert torrent.size == 20_005


def test_duplicate_upload_is_refused_and_nothing_is_written():
    uploader = MemberFactory()
    data = make_torrent_bytes(files=[("a", 20_000), ("b", 1)], name="d")
    first = torrent_upload(uploader=uploader, data=data)
    with pytest.raises(Conflict) as err:
        torrent_upload(uploader=MemberFactory(), data=data)
    assert err.value.field == "file"
    assert err.value.message == "This torrent is already on the site."
    # The file a member downloads (already private, same source) is the same torrent.
    served = torrent_download(torrent=first, member=uploader)
    with pytest.raises(Conflict):
        torrent_upload(uploader=uploader, data=served)
    assert Torrent.objects.count() == 1
    assert TorrentFile.objects.count() == 2


def test_upload_race_on_info_hash_becomes_conflict():
    data = make_torrent_bytes()
    upload_torrent_first = torrent_upload(uploader=MemberFactory(), data=data)
    # The duplicate pre-check misses (another process inserts between check and insert).
    with (
        mock.patch.object(QuerySet, "exists", side_effect=[False, True]),
        pytest.raises(Conflict) as err,
    ):
        torrent_upload(uploader=MemberFactory(), data=data)
    assert err.value.field == "file"
    assert list(Torrent.objects.values_list("pk", flat=True)) == [upload_torrent_first.pk]


def test_upload_failure_while_writing_files_leaves_nothing():
    with (
        mock.patch.object(TorrentFile.objects, "bulk_create", side_effect=IntegrityError("boom")),
        pytest.raises(IntegrityError),
    ):
        upload_torrent(MemberFactory())
    assert not Torrent.objects.exists()
    assert not TorrentFile.objects.exists()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"not bencode", "bencoding"),
        (make_torrent_bytes() + b"junk", "bencoding"),
        (make_torrent_bytes(v2_only=True), "v2-only torrents (BEP 52) are not supported"),
        (make_torrent_bytes(files=[("../escape", 10)], name="d"), "unsafe"),
    ],
)
def test_upload_of_bad_file_is_invalid_input_on_file(data, fragment):
    with pytest.raises(InvalidInput) as err:
        torrent_upload(uploader=MemberFactory(), data=data)
    assert err.value.field == "file"
    assert fragment in err.value.message
    assert not Torrent.objects.exists()


def test_upload_over_the_size_limit_is_refused(settings):
    data = make_torrent_bytes()
    settings.PBTS_MAX_TORRENT_BYTES = len(data) - 1
    with pytest.raises(InvalidInput) as err:
        torrent_upload(uploader=MemberFactory(), data=data)
    assert err.value.field == "file"
    assert "too large" in err.value.message


def test_banned_uploader_is_refused():
    staff = MemberFactory(is_staff=True)
    member = members.member_ban(member=MemberFactory(), actor=staff, reason="cheating")
    with pytest.raises(NotPermitted):
        upload_torrent(member)
    assert not Torrent.objects.exists()


def test_upload_forgets_a_cached_negative_answer():
    data = make_torrent_bytes()
    info_hash = _rewritten_hash(data)
    assert authcache.torrent_standing(info_hash) is None  # cached as unknown
    torrent = torrent_upload(uploader=MemberFactory(), data=data)
    standing = authcache.torrent_standing(info_hash)
    assert standing is not None and standing.torrent_id == torrent.pk


def test_upload_creates_the_other_category_once():
    upload_torrent(MemberFactory())
    upload_torrent(MemberFactory())
    assert Category.objects.filter(slug="other").count() == 1
    assert Category.objects.get(slug="other").name == "Other"


# --- download ------------------------------------------------------------------------------


def test_download_as_another_member_carries_their_announce_url_and_same_hash():
    torrent = upload_torrent(MemberFactory())
    downloader = MemberFactory()
    served = torrent_download(torrent=torrent, member=downloader)
    top = bdecode(served)
    url = member_announce_url(downloader).encode()
    udp_url = member_udp_announce_url(downloader).encode()
    assert downloader.passkey.encode() in url
    assert udp_url == f"udp://127.0.0.1:6969/announce/{downloader.passkey}".encode()
    assert top[b"announce"] == url
    assert top[b"announce-list"] == [[url, udp_url]]  # one tracker, two ways: one tier
    assert top[b"comment"] == f"{settings.PBTS_BASE_URL}/torrents/{torrent.pk}/".encode()
    assert _info_hash(served) == torrent.info_hash
    assert torrent.uploader.passkey.encode() not in served
    assert ORIGINAL_ANNOUNCE.encode() not in served


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"PBTS_BASE_URL": "https://pbts.example"}, "udp://pbts.example:6969"),
        ({"PBTS_BASE_URL": "https://[2001:db8::5]:8443"}, "udp://[2001:db8::5]:6969"),
        ({"PBTS_UDP_PORT": 7000}, "udp://127.0.0.1:7000"),
        ({"PBTS_UDP_ANNOUNCE_URL": "udp://udp.pbts.example:80"}, "udp://udp.pbts.example:80"),
    ],
)
def test_udp_announce_url_is_derived_from_settings(settings, overrides, expected):
    for name, value in overrides.items():
        setattr(settings, name, value)
    member = MemberFactory()
    assert member_udp_announce_url(member) == f"{expected}/announce/{member.passkey}"


def test_udp_off_lists_only_the_http_url(settings):
    settings.PBTS_UDP_PORT = 0
    settings.PBTS_UDP_ANNOUNCE_URL = "udp://ignored.example:6969"
    downloader = MemberFactory()
    assert member_udp_announce_url(downloader) == ""
    top = bdecode(torrent_download(torrent=upload_torrent(MemberFactory()), member=downloader))
    assert top[b"announce-list"] == [[member_announce_url(downloader).encode()]]


def test_download_by_banned_member_is_refused():
    torrent = upload_torrent(MemberFactory())
    member = members.member_ban(
        member=MemberFactory(), actor=MemberFactory(is_staff=True), reason="x"
    )
    with pytest.raises(NotPermitted) as err:
        torrent_download(torrent=torrent, member=member)
    assert err.value.message == "Your account is banned."


def test_download_with_downloading_disabled_is_refused():
    torrent = upload_torrent(MemberFactory())
    member = members.member_set_downloading(
        member=MemberFactory(), actor=MemberFactory(is_staff=True), enabled=False
    )
    with pytest.raises(NotPermitted) as err:
        torrent_download(torrent=torrent, member=member)
    assert err.value.message == "Your downloading is disabled."


def test_download_of_torrent_not_visible_is_not_found(settings):
    settings.PBTS_UPLOADS_NEED_APPROVAL = True
    uploader = MemberFactory()
    torrent = upload_torrent(uploader)
    with pytest.raises(NotFound):
        torrent_download(torrent=torrent, member=MemberFactory())
    # The uploader (to seed it) and staff may download a pending torrent.
    assert _info_hash(torrent_download(torrent=torrent, member=uploader)) == torrent.info_hash
    staff = MemberFactory(is_staff=True)
    assert member_announce_url(staff).encode() in torrent_download(torrent=torrent, member=staff)


def test_deleted_torrent_is_not_found_for_its_uploader():
    uploader = MemberFactory()
    torrent = upload_torrent(uploader)
    torrent_moderate(
        torrent=torrent, actor=MemberFactory(is_staff=True), status="deleted", reason="dupe"
    )
    with pytest.raises(NotFound):
        torrent_download(torrent=torrent, member=uploader)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Some Album (2020)", "[PBTS] Some Album (2020).torrent"),
        ("../../etc/passwd", "[PBTS] _.._etc_passwd.torrent"),
        ('a\\b"c\x00d\ne\u202ef', "[PBTS] a_b_c d e f.torrent"),
        ("...", "[PBTS] torrent.torrent"),
    ],
)
def test_torrent_filename_is_safe(settings, name, expected):
    settings.PBTS_SITE_NAME = "PBTS"
    assert torrent_filename(Torrent(name=name)) == expected


def test_torrent_filename_is_bounded():
    filename = torrent_filename(Torrent(name="n" * 255))
    assert len(filename) <= 200 + len(f"[{settings.PBTS_SITE_NAME}] .torrent")
    assert filename.endswith("n.torrent")


# --- moderation and promotion --------------------------------------------------------------


def test_moderation_is_audited_and_invalidates_authcache():
    torrent = upload_torrent(MemberFactory())
    staff = MemberFactory(is_staff=True)
    assert authcache.torrent_standing(torrent.info_hash).torrent_id == torrent.pk  # cached
    result = torrent_moderate(torrent=torrent, actor=staff, status="rejected", reason="fake")
    assert result.status == TorrentStatus.REJECTED
    assert result.moderation_reason == "fake"
    assert authcache.torrent_standing(torrent.info_hash) is None
    log = AuditLog.objects.get(action="torrent_rejected")
    assert log.actor == staff
    assert log.target_id == str(torrent.pk)
    assert log.old_values["status"] == "approved"
    assert log.new_values["status"] == "rejected"
    assert log.reason == "fake"
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.APPROVED)
    assert authcache.torrent_standing(torrent.info_hash).torrent_id == torrent.pk
    assert AuditLog.objects.filter(action="torrent_approved").count() == 1


def test_moderation_refuses_non_staff_bad_status_and_missing_reason():
    torrent = upload_torrent(MemberFactory())
    with pytest.raises(NotPermitted):
        torrent_moderate(torrent=torrent, actor=torrent.uploader, status="deleted", reason="x")
    staff = MemberFactory(is_staff=True)
    with pytest.raises(InvalidInput) as err:
        torrent_moderate(torrent=torrent, actor=staff, status="burned")
    assert err.value.field == "status"
    with pytest.raises(InvalidInput) as err:
        torrent_moderate(torrent=torrent, actor=staff, status="deleted", reason="  ")
    assert err.value.field == "reason"
    torrent.refresh_from_db()
    assert torrent.status == TorrentStatus.APPROVED
    assert not AuditLog.objects.exists()


def test_promotion_is_audited_and_invalidates_authcache():
    torrent = upload_torrent(MemberFactory())
    staff = MemberFactory(is_staff=True)
    assert authcache.torrent_standing(torrent.info_hash).is_freeleech is False  # cached
    torrent_set_promotion(
        torrent=torrent, actor=staff, is_freeleech=True, is_double_upload=True, reason="event"
    )
    standing = authcache.torrent_standing(torrent.info_hash)
    assert standing.is_freeleech is True and standing.is_double_upload is True
    log = AuditLog.objects.get(action="torrent_promotion")
    assert log.old_values == {"is_freeleech": False, "is_double_upload": False}
    assert log.new_values == {"is_freeleech": True, "is_double_upload": True}
    with pytest.raises(NotPermitted):
        torrent_set_promotion(
            torrent=torrent, actor=torrent.uploader, is_freeleech=False, is_double_upload=False
        )


# --- edits ---------------------------------------------------------------------------------


def test_uploader_edits_own_torrent_without_audit():
    torrent = upload_torrent(MemberFactory())
    music = CategoryFactory(slug="music", name="Music")
    result = torrent_update(
        torrent=torrent, actor=torrent.uploader, name="New", description="D", category=music
    )
    result.refresh_from_db()
    assert (result.name, result.description, result.category) == ("New", "D", music)
    assert not AuditLog.objects.exists()


def test_staff_edit_of_someone_elses_torrent_is_audited():
    torrent = upload_torrent(MemberFactory())
    staff = MemberFactory(is_staff=True)
    torrent_update(torrent=torrent, actor=staff, name="Fixed name")
    log = AuditLog.objects.get(action="torrent_update")
    assert log.old_values == {"name": "file.bin"}
    assert log.new_values == {"name": "Fixed name"}


def test_other_member_cannot_edit_and_names_are_checked():
    torrent = upload_torrent(MemberFactory())
    with pytest.raises(NotPermitted):
        torrent_update(torrent=torrent, actor=MemberFactory(), name="Mine now")
    with pytest.raises(InvalidInput) as err:
        torrent_update(torrent=torrent, actor=torrent.uploader, name="   ")
    assert err.value.field == "name"
    torrent.refresh_from_db()
    assert torrent.name == "file.bin"


# --- a real tool ---------------------------------------------------------------------------


def test_mktorrent_file_is_rewritten_private_with_source_and_served_per_member(tmp_path: Path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(300_000))
    made = tmp_path / "out.torrent"
    subprocess.run(
        [
            "/usr/bin/mktorrent",
            "-a",
            "http://example.invalid/announce",
            "-l",
            "15",
            "-o",
            str(made),
            str(payload),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    original = made.read_bytes()
    original_hash = _info_hash(original)
    assert torf.Torrent.read(made).infohash == original_hash

    torrent = torrent_upload(uploader=MemberFactory(), data=original)
    torrent.refresh_from_db()
    stored_bytes = bytes(torrent.metainfo)

    # fastbencode: private, source, hash of the stored info dict.
    stored = bdecode(stored_bytes)
    assert stored[b"info"][b"private"] == 1
    assert stored[b"info"][b"source"] == settings.PBTS_TORRENT_SOURCE.encode()
    assert hashlib.sha1(bencode(stored[b"info"])).hexdigest() == torrent.info_hash
    assert torrent.info_hash != original_hash
    assert (torrent.size, torrent.piece_length, torrent.piece_count) == (300_000, 32768, 10)

    # torf, independently.
    stored_path = tmp_path / "stored.torrent"
    stored_path.write_bytes(stored_bytes)
    read = torf.Torrent.read(stored_path)
    assert read.private is True
    assert read.source == settings.PBTS_TORRENT_SOURCE
    assert read.infohash == torrent.info_hash
    assert read.trackers == []

    # Another member downloads: their passkeyed URL, same hash, pieces still verify the data.
    downloader = MemberFactory()
    url = member_announce_url(downloader)
    assert downloader.passkey in url
    served_path = tmp_path / "served.torrent"
    served_path.write_bytes(torrent_download(torrent=torrent, member=downloader))
    served = bdecode(served_path.read_bytes())
    udp_url = member_udp_announce_url(downloader)
    assert served[b"announce"] == url.encode()
    assert served[b"announce-list"] == [[url.encode(), udp_url.encode()]]
    assert hashlib.sha1(bencode(served[b"info"])).hexdigest() == torrent.info_hash
    read = torf.Torrent.read(served_path)
    assert read.infohash == torrent.info_hash
    assert read.trackers == [[url, udp_url]]
    assert read.private is True and read.source == settings.PBTS_TORRENT_SOURCE
    assert read.verify(payload) is True
