"""The moderation API under /api/v1/moderation/: who may do what, field-level errors, and the
OpenAPI schema."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from moderation.models import MemberWarning, Report, ReportStatus, StaffNote
from moderation.services.notes import note_add
from moderation.services.reports import report_create
from tracker.services.members import member_ban
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db
BASE = "/api/v1/moderation"


def api_for(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(member)
    return client


@pytest.fixture
def member():
    return MemberFactory()


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


def test_member_files_a_report_through_the_api(member, staff):
    torrent = upload_torrent(staff)
    response = api_for(member).post(
        f"{BASE}/reports/", {"torrent": torrent.pk, "category": "fake", "text": "Fake."}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "open"
    again = api_for(member).post(
        f"{BASE}/reports/", {"torrent": torrent.pk, "category": "fake", "text": "Fake!"}
    )
    assert again.status_code == 409
    about_member = api_for(member).post(
        f"{BASE}/reports/", {"member": staff.username, "category": "abuse", "text": "Rude."}
    )
    assert about_member.status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"category": "fake", "text": "x"}, "torrent"),
        ({"torrent": 1, "member": "x", "category": "fake", "text": "x"}, "torrent"),
        ({"member": "{target}", "category": "bogus", "text": "x"}, "category"),
        ({"member": "{target}", "category": "fake", "text": ""}, "text"),
        ({"member": "{target}", "category": "fake", "text": "x" * 2001}, "text"),
        ({"member": "{self}", "category": "fake", "text": "me"}, "member"),
        ({"torrent": "abc", "category": "fake", "text": "x"}, "torrent"),
    ],
)
def test_bad_report_input_is_400_with_the_field(member, payload, field):
    target = MemberFactory()
    body = {
        k: (v.format(target=target.username, self=member.username) if isinstance(v, str) else v)
        for k, v in payload.items()
    }
    response = api_for(member).post(f"{BASE}/reports/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Report.objects.exists()


def test_unknown_targets_are_404(member):
    client = api_for(member)
    r1 = client.post(f"{BASE}/reports/", {"torrent": 999999, "category": "fake", "text": "x"})
    r2 = client.post(f"{BASE}/reports/", {"member": "nobody", "category": "fake", "text": "x"})
    assert r1.status_code == 404 and r2.status_code == 404


def test_a_member_cannot_list_claim_resolve_warn_or_read_notes(member, staff):
    report = report_create(reporter=MemberFactory(), member=staff, category="abuse", text="x")
    target = MemberFactory()
    note_add(member=member, author=staff, body="secret about member")
    client = api_for(member)
    for method, url, body in [
        ("get", f"{BASE}/reports/", None),
        ("get", f"{BASE}/reports/{report.pk}/", None),
        ("post", f"{BASE}/reports/{report.pk}/claim/", {}),
        ("post", f"{BASE}/reports/{report.pk}/resolve/", {"status": "resolved", "resolution": "x"}),
        ("post", f"{BASE}/members/{target.username}/warnings/", {"reason": "x", "days": 3}),
        ("get", f"{BASE}/members/{target.username}/warnings/", None),
        ("get", f"{BASE}/members/{member.username}/notes/", None),
        ("post", f"{BASE}/members/{target.username}/notes/", {"body": "x"}),
    ]:
        response = getattr(client, method)(url, body)
        assert response.status_code == 403, url
        assert b"secret" not in response.content
    report.refresh_from_db()
    assert report.status == ReportStatus.OPEN
    assert not MemberWarning.objects.exists() and StaffNote.objects.count() == 1
    # The member's own API view of themselves carries no note.
    assert b"secret" not in client.get("/api/v1/me/").content


def test_staff_workflow_through_the_api(member, staff):
    report = report_create(reporter=member, member=MemberFactory(), category="spam", text="x")
    client = api_for(staff)
    listing = client.get(f"{BASE}/reports/").json()
    assert [r["id"] for r in listing["results"]] == [report.pk]
    assert client.post(f"{BASE}/reports/{report.pk}/claim/").json()["status"] == "claimed"
    assert client.post(f"{BASE}/reports/{report.pk}/claim/").status_code == 409
    bad = client.post(f"{BASE}/reports/{report.pk}/resolve/", {"status": "open", "resolution": "x"})
    assert bad.status_code == 400 and "status" in bad.json()
    done = client.post(
        f"{BASE}/reports/{report.pk}/resolve/", {"status": "dismissed", "resolution": "No spam."}
    )
    assert done.status_code == 200 and done.json()["status"] == "dismissed"
    assert client.get(f"{BASE}/reports/?status=dismissed").json()["count"] == 1
    assert client.get(f"{BASE}/reports/").json()["count"] == 0
    assert client.get(f"{BASE}/reports/?status=bogus").status_code == 400


def test_staff_warn_revoke_and_note_through_the_api(member, staff):
    client = api_for(staff)
    url = f"{BASE}/members/{member.username}/warnings/"
    for body, field in [
        ({"reason": "x", "days": 0}, "days"),
        ({"reason": "", "days": 3}, "reason"),
        ({"reason": "x", "days": 366}, "days"),
        ({"reason": "x"}, "days"),
    ]:
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and field in response.json(), body
    created = client.post(url, {"reason": "Be nice.", "days": 7}, format="json")
    assert created.status_code == 201 and created.json()["state"] == "active"
    warning_id = created.json()["id"]
    revoked = client.post(f"{BASE}/warnings/{warning_id}/revoke/", {"reason": "ok"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert client.post(f"{BASE}/warnings/{warning_id}/revoke/").status_code == 409
    assert client.post(f"{BASE}/warnings/999999/revoke/").status_code == 404
    notes_url = f"{BASE}/members/{member.username}/notes/"
    assert client.post(notes_url, {"body": ""}).status_code == 400
    assert client.post(notes_url, {"body": "Watch."}).status_code == 201
    assert [n["body"] for n in client.get(notes_url).json()["results"]] == ["Watch."]
    # A staff member never reads the notes about themselves.
    note_add(member=staff, author=MemberFactory(is_staff=True), body="about staff")
    assert client.get(f"{BASE}/members/{staff.username}/notes/").json()["count"] == 0


def test_staff_cannot_warn_staff_and_banned_staff_are_refused(member, staff):
    other = MemberFactory(is_staff=True)
    response = api_for(staff).post(
        f"{BASE}/members/{other.username}/warnings/", {"reason": "x", "days": 3}
    )
    assert response.status_code == 403
    owner = MemberFactory(is_staff=True, is_superuser=True)
    member_ban(member=staff, actor=owner, reason="rogue")
    staff.refresh_from_db()
    client = api_for(staff)
    assert client.get(f"{BASE}/reports/").status_code == 403
    assert client.get(f"{BASE}/members/{member.username}/notes/").status_code == 403
    assert client.get(f"{BASE}/stats/").status_code == 403


def test_stats_for_members(member, staff):
    upload_torrent(staff)
    body = api_for(member).get(f"{BASE}/stats/").json()
    assert body["members_total"] == 2 and body["torrents_approved"] == 1
    assert APIClient().get(f"{BASE}/stats/").status_code in (401, 403)


def test_every_moderation_endpoint_is_in_the_schema(tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", out
    )
    paths = json.loads(out.read_text())["paths"]
    expected = {
        f"{BASE}/reports/": {"get", "post"},
        f"{BASE}/reports/{{id}}/": {"get"},
        f"{BASE}/reports/{{id}}/claim/": {"post"},
        f"{BASE}/reports/{{id}}/resolve/": {"post"},
        f"{BASE}/members/{{username}}/warnings/": {"get", "post"},
        f"{BASE}/members/{{username}}/notes/": {"get", "post"},
        f"{BASE}/warnings/{{id}}/revoke/": {"post"},
        f"{BASE}/stats/": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
