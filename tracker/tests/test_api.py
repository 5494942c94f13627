import hashlib
import io
import json
import os
import re
import subprocess

import pytest
import torf
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings
from fastbencode import bdecode, bencode
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from core.models import AuditLog
from tracker.metainfo import V2_ONLY_MESSAGE
from tracker.models import Category, Member, Torrent, TorrentFile, TorrentStatus
from tracker.selectors import member_announce_url
from tracker.services.members import member_api_token, member_ban, member_set_downloading
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import make_torrent_bytes, upload_torrent

pytestmark = pytest.mark.django_db

HEX40 = re.compile(r"^[0-9a-f]{40}$")
TORRENTS = "/api/v1/torrents/"


def api_for(member: Member | None = None) -> APIClient:
    """An API client authenticated with ``member``'s token (anonymous when ``None``)."""
    client = APIClient()
    if member is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def info_hash_of(data: bytes) -> str:
    """The v1 info_hash of a .torrent: SHA-1 of its bencoded info dictionary."""
    return hashlib.sha1(bencode(bdecode(data)[b"info"])).hexdigest()


def torrent_file(data: bytes, filename: str = "upload.torrent") -> SimpleUploadedFile:
    """``data`` as a multipart file upload."""
    return SimpleUploadedFile(filename, data, content_type="application/x-bittorrent")


def nothing_written() -> bool:
    """No torrent and no torrent file row exists."""
    return not Torrent.objects.exists() and not TorrentFile.objects.exists()


@pytest.fixture
def member() -> Member:
    return MemberFactory()


@pytest.fixture
def staff() -> Member:
    return MemberFactory(is_staff=True)


# --- /me, credentials -----------------------------------------------------------------


def test_me_returns_account_with_integer_bytes_and_ratio(member):
    member.ledger.uploaded = 6 * 1024**4  # past 32 bits on purpose
    member.ledger.downloaded = 4 * 1024**4
    member.ledger.save()
    response = api_for(member).get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == member.username
    assert body["passkey"] == member.passkey
    assert body["announce_url"] == member_announce_url(member)
    assert body["announce_url"].endswith(f"/announce/{member.passkey}")
    assert body["uploaded"] == 6 * 1024**4 and type(body["uploaded"]) is int
    assert body["downloaded"] == 4 * 1024**4 and type(body["downloaded"]) is int
    assert body["ratio"] == pytest.approx(1.5)
    assert body["member_class"] == "user"
    assert body["invites_left"] == 0
    assert body["can_download"] is True
    assert body["is_banned"] is False
    assert body["date_joined"]


def test_me_ratio_is_null_before_any_download(member):
    body = api_for(member).get("/api/v1/me/").json()
    assert body["uploaded"] == 0 and body["downloaded"] == 0
    assert body["ratio"] is None


def test_me_of_an_account_without_ledger_reports_zero_not_500():
    bare = Member.objects.create(username="bare")
    token = Token.objects.create(user=bare)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["uploaded"] == 0 and response.json()["ratio"] is None


def test_me_without_token_is_401_json():
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
    assert response["WWW-Authenticate"] == "Token"


def test_me_with_wrong_token_is_401_json(member):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_token_reset_returns_new_token_and_old_one_stops_working(member):
    old = member_api_token(member)
    client = api_for(member)
    response = client.post("/api/v1/me/token/reset/")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old and re.fullmatch(r"[0-9a-f]{40}", new)
    assert client.get("/api/v1/me/").status_code == 401  # still sends the old token
    client.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert client.get("/api/v1/me/").json()["username"] == member.username


def test_passkey_reset_returns_new_passkey_and_announce_url(member):
    old = member.passkey
    client = api_for(member)
    response = client.post("/api/v1/me/passkey/reset/")
    assert response.status_code == 200
    body = response.json()
    assert body["passkey"] != old and re.fullmatch(r"[0-9a-f]{32}", body["passkey"])
    assert body["announce_url"].endswith(f"/announce/{body['passkey']}")
    member.refresh_from_db()
    assert member.passkey == body["passkey"]
    assert client.get("/api/v1/me/").json()["passkey"] == body["passkey"]


def test_credential_resets_and_uploads_are_throttled_but_browsing_is_not(member, monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {"credentials": "1/hour", "upload": "1/hour"}
    )
    client = api_for(member)
    assert client.post("/api/v1/me/passkey/reset/").status_code == 200
    assert client.post("/api/v1/me/passkey/reset/").status_code == 429
    assert client.post(TORRENTS, {"file": torrent_file(make_torrent_bytes())}).status_code == 201
    assert client.post(TORRENTS, {"file": torrent_file(make_torrent_bytes())}).status_code == 429
    assert Torrent.objects.count() == 1
    for _ in range(3):
        assert client.get(TORRENTS).status_code == 200


# --- categories ------------------------------------------------------------------------


def test_categories_list_in_display_order(member):
    CategoryFactory(name="TV", slug="tv", position=2)
    CategoryFactory(name="Movies", slug="movies", position=1)
    response = api_for(member).get("/api/v1/categories/")
    assert response.status_code == 200
    assert response.json() == [{"name": "Movies", "slug": "movies"}, {"name": "TV", "slug": "tv"}]


# --- upload ----------------------------------------------------------------------------


def test_upload_registers_the_rewritten_torrent(member):
    category = CategoryFactory(slug="movies")
    data = make_torrent_bytes(name="big.mkv", size=300_000)
    response = api_for(member).post(
        TORRENTS,
        {
            "file": torrent_file(data),
            "category": "movies",
            "name": "Big Movie",
            "description": "*nice*",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert HEX40.match(body["info_hash"])
    assert body["info_hash"] != info_hash_of(data)
    assert "download" in body["message"] and body["info_hash"] in body["message"]
    assert body["download_url"].endswith(f"/api/v1/torrents/{body['id']}/download/")
    assert response["Location"] == f"/api/v1/torrents/{body['id']}/"
    torrent = Torrent.objects.get(pk=body["id"])
    assert torrent.info_hash == body["info_hash"]
    assert torrent.uploader == member and torrent.category == category
    assert body["name"] == "Big Movie" and body["category"] == "movies"
    assert body["size"] == 300_000 and body["uploader"] == member.username
    assert body["description_html"] == "<p><em>nice</em></p>"
    assert body["files"] == [{"path": "big.mkv", "size": 300_000}]
    assert body["status"] == TorrentStatus.APPROVED


@override_settings(PBTS_UPLOADS_NEED_APPROVAL=True)
def test_upload_pending_approval_says_so(member):
    response = api_for(member).post(TORRENTS, {"file": torrent_file(make_torrent_bytes())})
    assert response.status_code == 201
    assert response.json()["status"] == TorrentStatus.PENDING
    assert "approve" in response.json()["message"]


@pytest.mark.parametrize(
    ("payload", "field", "needle"),
    [
        pytest.param(
            lambda: {"file": torrent_file(b"d4:infoi1e")}, "file", "", id="malformed-bencode"
        ),
        pytest.param(
            lambda: {"file": torrent_file(make_torrent_bytes(v2_only=True))},
            "file",
            V2_ONLY_MESSAGE,
            id="v2-only",
        ),
        pytest.param(lambda: {"name": "no file"}, "file", "", id="missing-file"),
        pytest.param(
            lambda: {"file": torrent_file(make_torrent_bytes()), "category": "nope"},
            "category",
            "Unknown category",
            id="unknown-category",
        ),
        pytest.param(lambda: {"file": "not a file, a string"}, "file", "", id="file-is-a-string"),
        pytest.param(
            lambda: {"file": torrent_file(make_torrent_bytes()), "description": "a\x00b"},
            "description",
            "",
            id="nul-in-description",
        ),
    ],
)
def test_upload_bad_input_is_400_with_a_field_message_and_writes_nothing(
    member, payload, field, needle
):
    categories = Category.objects.count()
    response = api_for(member).post(TORRENTS, payload())
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    messages = response.json()[field]
    assert isinstance(messages, list) and messages[0]
    assert needle in messages[0]
    assert nothing_written()
    assert Category.objects.count() == categories


def test_upload_oversize_file_is_400_and_writes_nothing(member):
    data = make_torrent_bytes()
    with override_settings(PBTS_MAX_TORRENT_BYTES=len(data) - 1):
        response = api_for(member).post(TORRENTS, {"file": torrent_file(data)})
    assert response.status_code == 400
    assert "too large" in response.json()["file"][0]
    assert nothing_written()
    with override_settings(PBTS_MAX_TORRENT_BYTES=len(data)):  # exactly the limit passes
        assert api_for(member).post(TORRENTS, {"file": torrent_file(data)}).status_code == 201


def test_upload_as_json_is_415_not_500(member):
    response = api_for(member).post(TORRENTS, {"file": "x"}, format="json")
    assert response.status_code == 415
    assert nothing_written()


def test_upload_duplicate_is_409_on_the_file_field(member):
    data = make_torrent_bytes()
    client = api_for(member)
    assert client.post(TORRENTS, {"file": torrent_file(data)}).status_code == 201
    response = client.post(TORRENTS, {"file": torrent_file(data)})
    assert response.status_code == 409
    assert response.json()["file"] == ["This torrent is already on the site."]
    assert Torrent.objects.count() == 1


def test_upload_by_banned_member_is_403_and_writes_nothing(member, staff):
    member_ban(member=member, actor=staff, reason="cheating")
    response = api_for(member).post(TORRENTS, {"file": torrent_file(make_torrent_bytes())})
    assert response.status_code == 403
    assert "banned" in response.json()["detail"]
    assert nothing_written()


def test_upload_without_token_is_401(member):
    response = APIClient().post(TORRENTS, {"file": torrent_file(make_torrent_bytes())})
    assert response.status_code == 401
    assert nothing_written()


# --- browse and detail -----------------------------------------------------------------


def test_list_shows_approved_torrents_with_their_fields(member, staff):
    category = CategoryFactory(slug="music")
    torrent = upload_torrent(member, category=category, name="Album", size=50_000)
    hidden = upload_torrent(member, name="Hidden")
    torrent_moderate(torrent=hidden, actor=staff, status=TorrentStatus.REJECTED, reason="dupe")
    response = api_for(staff).get(TORRENTS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert row["id"] == torrent.pk
    assert row["info_hash"] == torrent.info_hash
    assert row["name"] == "Album" and row["category"] == "music"
    assert row["size"] == 50_000 and row["piece_count"] == torrent.piece_count
    assert (row["seeders"], row["leechers"], row["snatches"]) == (0, 0, 0)
    assert row["is_freeleech"] is False and row["is_double_upload"] is False
    assert row["uploader"] == member.username
    assert row["created_at"]
    assert "description" not in row and "metainfo" not in row


def test_list_filters_searches_sorts_and_paginates(member):
    music = CategoryFactory(slug="music")
    small = upload_torrent(member, name="Blue Album", size=10_000, category=music)
    large = upload_torrent(member, name="Red Album", size=90_000)
    other = upload_torrent(member, name="Green Film", size=50_000)
    client = api_for(member)

    def ids(query: str) -> list[int]:
        return [row["id"] for row in client.get(f"{TORRENTS}?{query}").json()["results"]]

    assert ids("q=album") == [large.pk, small.pk]
    assert ids("q=album+blue") == [small.pk]
    assert ids("category=music") == [small.pk]
    assert ids("category=unknown") == []
    assert ids("sort=size") == [large.pk, other.pk, small.pk]
    assert ids("sort=name") == [small.pk, other.pk, large.pk]
    page = client.get(f"{TORRENTS}?sort=name&page_size=2&page=2").json()
    assert page["count"] == 3 and [r["id"] for r in page["results"]] == [large.pk]
    assert page["previous"] and page["next"] is None


@pytest.mark.parametrize(
    ("query", "status"),
    [("sort=bogus", 400), ("q=a%00b", 400), ("page=abc", 404), ("page=99", 404)],
)
def test_list_bad_query_is_a_client_error_not_500(member, query, status):
    response = api_for(member).get(f"{TORRENTS}?{query}")
    assert response.status_code == status
    assert response.json()


def _make_torrents(count: int) -> None:
    """Upload ``count`` torrents spread over three uploaders and three categories."""
    uploaders = [MemberFactory() for _ in range(3)]
    categories = [CategoryFactory() for _ in range(3)]
    for i in range(count):
        upload_torrent(uploaders[i % 3], category=categories[i % 3], name=f"t{i}", size=20_000)


@pytest.mark.parametrize("count", [3, 30])
def test_list_query_count_does_not_grow_with_rows(member, count, django_assert_num_queries):
    _make_torrents(count)
    client = api_for(member)
    # token lookup (with the user), page count, page rows, their tags
    with django_assert_num_queries(4):
        response = client.get(f"{TORRENTS}?sort=seeders")
    assert len(response.json()["results"]) == count
    assert {row["uploader"] for row in response.json()["results"]} != {None}


def test_detail_has_files_pieces_and_safe_description(member):
    torrent = upload_torrent(
        member,
        description="**hi** <script>alert(1)</script>",
        files=[("dir/a.bin", 20_000), ("b.bin", 30_000)],
        name="pack",
    )
    response = api_for(MemberFactory()).get(f"{TORRENTS}{torrent.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == torrent.pk and body["info_hash"] == torrent.info_hash
    assert body["name"] == "pack" and body["size"] == 50_000
    assert (body["seeders"], body["leechers"], body["snatches"]) == (0, 0, 0)
    assert body["category"] == "other"
    assert body["description"] == "**hi** <script>alert(1)</script>"
    assert "<strong>hi</strong>" in body["description_html"]
    assert "<script" not in body["description_html"]
    assert body["files"] == [
        {"path": "dir/a.bin", "size": 20_000},
        {"path": "b.bin", "size": 30_000},
    ]
    assert body["piece_length"] == 16384 and body["piece_count"] == torrent.piece_count
    assert body["status"] == "approved" and body["uploader"] == member.username
    assert body["created_at"]


@override_settings(PBTS_UPLOADS_NEED_APPROVAL=True)
def test_detail_and_download_of_a_pending_torrent_follow_visibility(member, staff):
    torrent = upload_torrent(member)
    url = f"{TORRENTS}{torrent.pk}/"
    assert api_for(member).get(url).json()["status"] == "pending"
    assert api_for(staff).get(url).status_code == 200
    other = api_for(MemberFactory())
    assert other.get(url).status_code == 404
    assert other.get(f"{url}download/").status_code == 404
    assert other.get(TORRENTS).json()["count"] == 0


def test_detail_of_unknown_or_absurd_id_is_404_json(member):
    client = api_for(member)
    for torrent_id in (12345, 10**30):
        response = client.get(f"{TORRENTS}{torrent_id}/")
        assert response.status_code == 404
        assert response.json()["detail"]


# --- download --------------------------------------------------------------------------


def test_download_by_another_member_carries_their_announce_url(member):
    torrent = upload_torrent(member, name="Some Show")
    downloader = MemberFactory()
    response = api_for(downloader).get(f"{TORRENTS}{torrent.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-bittorrent"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".torrent" in disposition
    assert "Some Show" in disposition
    data = response.content
    top = bdecode(data)
    assert top[b"announce"] == member_announce_url(downloader).encode()
    assert downloader.passkey.encode() in data
    assert member.passkey.encode() not in data
    assert info_hash_of(data) == torrent.info_hash


def test_download_honours_accept_bittorrent(member):
    torrent = upload_torrent(member)
    response = api_for(member).get(
        f"{TORRENTS}{torrent.pk}/download/", HTTP_ACCEPT="application/x-bittorrent"
    )
    assert response.status_code == 200
    assert info_hash_of(response.content) == torrent.info_hash


@pytest.mark.parametrize("accept", ["application/json", "application/x-bittorrent"])
def test_download_by_banned_member_is_403_json(member, staff, accept):
    torrent = upload_torrent(staff)
    member_ban(member=member, actor=staff, reason="abuse")
    response = api_for(member).get(f"{TORRENTS}{torrent.pk}/download/", HTTP_ACCEPT=accept)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Your account is banned."}


def test_download_with_downloading_disabled_is_403_json(member, staff):
    torrent = upload_torrent(staff)
    member_set_downloading(member=member, actor=staff, enabled=False)
    response = api_for(member).get(f"{TORRENTS}{torrent.pk}/download/")
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


def test_download_of_own_rejected_torrent_is_403_json(member, staff):
    torrent = upload_torrent(member)
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.REJECTED, reason="dupe")
    assert api_for(member).get(f"{TORRENTS}{torrent.pk}/").status_code == 200
    response = api_for(member).get(f"{TORRENTS}{torrent.pk}/download/")
    assert response.status_code == 403
    assert response.json() == {"detail": "This torrent was rejected: it cannot be downloaded."}


# --- staff endpoints -------------------------------------------------------------------


def test_staff_endpoints_are_403_json_for_members(member):
    torrent = upload_torrent(member)
    other = MemberFactory()
    client = api_for(member)
    calls = [
        client.get("/api/v1/members/"),
        client.post(f"/api/v1/members/{other.username}/ban/", {"reason": "x"}),
        client.post(f"/api/v1/members/{other.username}/unban/", {"reason": "x"}),
        client.post(f"{TORRENTS}{torrent.pk}/moderate/", {"status": "rejected", "reason": "x"}),
    ]
    for response in calls:
        assert response.status_code == 403
        assert response.json()["detail"]
    other.refresh_from_db()
    torrent.refresh_from_db()
    assert not other.is_banned and torrent.status == TorrentStatus.APPROVED
    assert not AuditLog.objects.exists()


def test_staff_lists_and_searches_members(staff):
    MemberFactory(username="alice", email="alice@example.org")
    MemberFactory(username="bob", email="bob@mail.test")
    client = api_for(staff)
    body = client.get("/api/v1/members/").json()
    assert body["count"] == 3
    assert "passkey" not in body["results"][0]

    def usernames(query: str) -> list[str]:
        return [m["username"] for m in client.get(f"/api/v1/members/?{query}").json()["results"]]

    assert usernames("q=ALI") == ["alice"]
    assert usernames("q=mail.test") == ["bob"]
    assert client.get("/api/v1/members/?q=a%00").status_code == 400  # never a 500
    row = client.get("/api/v1/members/?q=bob").json()["results"][0]
    assert row["uploaded"] == 0 and row["ratio"] is None and row["is_banned"] is False


def test_staff_bans_and_unbans_a_member_with_audit(member, staff):
    client = api_for(staff)
    response = client.post(
        f"/api/v1/members/{member.username}/ban/", {"reason": "hit and run"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_banned"] is True
    assert response.json()["ban_reason"] == "hit and run"
    member.refresh_from_db()
    assert member.is_banned
    log = AuditLog.objects.get(action="member_ban")
    assert log.actor == staff and log.target_id == str(member.pk)
    torrent = upload_torrent(staff)
    assert api_for(member).get(f"{TORRENTS}{torrent.pk}/download/").status_code == 403

    response = client.post(f"/api/v1/members/{member.username}/unban/", format="json")
    assert response.status_code == 200 and response.json()["is_banned"] is False
    member.refresh_from_db()
    assert not member.is_banned
    assert AuditLog.objects.filter(action="member_unban", actor=staff).exists()


def test_ban_needs_a_reason_and_an_existing_member(member, staff):
    client = api_for(staff)
    response = client.post(f"/api/v1/members/{member.username}/ban/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["reason"]
    member.refresh_from_db()
    assert not member.is_banned
    response = client.post("/api/v1/members/nobody/ban/", {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert client.post("/api/v1/members/a%00b/ban/", {"reason": "x"}).status_code == 404


def test_staff_cannot_ban_the_owner(staff):
    owner = MemberFactory(is_superuser=True)
    response = api_for(staff).post(
        f"/api/v1/members/{owner.username}/ban/", {"reason": "coup"}, format="json"
    )
    assert response.status_code == 403
    assert "owner" in response.json()["detail"]


def test_staff_moderates_a_torrent(member, staff):
    torrent = upload_torrent(member)
    client = api_for(staff)
    url = f"{TORRENTS}{torrent.pk}/moderate/"
    response = client.post(url, {"status": "rejected"}, format="json")
    assert response.status_code == 400 and response.json()["reason"]
    response = client.post(url, {"status": "gone"}, format="json")
    assert response.status_code == 400 and response.json()["status"]
    response = client.post(url, {"status": "rejected", "reason": "fake"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["moderation_reason"] == "fake"
    assert api_for(MemberFactory()).get(TORRENTS).json()["count"] == 0
    assert AuditLog.objects.filter(action="torrent_rejected", actor=staff).exists()
    assert client.post(f"{TORRENTS}999999/moderate/", {"status": "approved"}).status_code == 404


# --- schema ----------------------------------------------------------------------------

API_PATHS = {
    "/api/v1/me/": {"get"},
    "/api/v1/me/passkey/reset/": {"post"},
    "/api/v1/me/token/reset/": {"post"},
    "/api/v1/categories/": {"get"},
    "/api/v1/torrents/": {"get", "post"},
    "/api/v1/torrents/{id}/": {"get"},
    "/api/v1/torrents/{id}/download/": {"get"},
    "/api/v1/torrents/{id}/moderate/": {"post"},
    "/api/v1/members/": {"get"},
    "/api/v1/members/{username}/ban/": {"post"},
    "/api/v1/members/{username}/unban/": {"post"},
}


def test_schema_generates_without_warnings_and_documents_every_endpoint(tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", out
    )
    schema = json.loads(out.read_text())
    paths = schema["paths"]
    for path, methods in API_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    upload = paths["/api/v1/torrents/"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data"}
    download = paths["/api/v1/torrents/{id}/download/"]["get"]["responses"]["200"]
    assert download["content"]["application/x-bittorrent"]["schema"]["format"] == "binary"
    assert "PaginatedTorrentSummaryList" in schema["components"]["schemas"]


def test_schema_endpoint_answers_a_member(member):
    response = api_for(member).get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/torrents/" in response.content


# --- a real tool end to end ------------------------------------------------------------


def test_mktorrent_file_uploaded_and_downloaded_through_the_api(member, tmp_path):
    content = tmp_path / "payload.bin"
    content.write_bytes(os.urandom(700_000))
    created = tmp_path / "payload.torrent"
    subprocess.run(
        [
            "/usr/bin/mktorrent",
            "-a",
            "http://public.example.org/announce",
            "-l",
            "15",
            "-o",
            str(created),
            str(content),
        ],
        check=True,
        capture_output=True,
    )
    original = created.read_bytes()
    assert b"private" not in bdecode(original)[b"info"]

    response = api_for(member).post(TORRENTS, {"file": torrent_file(original)})
    assert response.status_code == 201, response.content
    info_hash = response.json()["info_hash"]
    assert info_hash != info_hash_of(original)

    downloader = MemberFactory()
    download = api_for(downloader).get(response.json()["download_url"])
    assert download.status_code == 200
    data = download.content

    parsed = torf.Torrent.read_stream(io.BytesIO(data))
    assert parsed.private is True
    assert parsed.source == settings.PBTS_TORRENT_SOURCE
    assert parsed.infohash == info_hash
    assert parsed.size == 700_000
    assert parsed.verify(str(content))  # the member's original file seeds the new torrent

    top = bdecode(data)
    info = top[b"info"]
    assert info[b"private"] == 1
    assert info[b"source"] == settings.PBTS_TORRENT_SOURCE.encode()
    assert hashlib.sha1(bencode(info)).hexdigest() == info_hash
    assert top[b"announce"] == member_announce_url(downloader).encode()
    assert b"public.example.org" not in data


@pytest.mark.django_db
def test_banned_member_token_is_refused_by_the_api():
    from rest_framework.test import APIClient

    from tracker.services.members import member_api_token, member_ban

    member = MemberFactory()
    member_ban(member=member, actor=MemberFactory(is_staff=True), reason="cheating")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    response = api.get("/api/v1/me/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Your account is banned."}
