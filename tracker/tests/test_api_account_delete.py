"""``POST /api/v1/me/delete/``: account deletion on the API, through ``member_anonymise`` (the
page's service), with token and session authentication, and the attacks on it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from core.models import AuditLog
from tracker.models import Member
from tracker.services.members import member_api_token, member_ban
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/delete/"


def token_client(member: Member) -> APIClient:
    """An API client authenticated with the member's token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def fresh(member: Member) -> Member:
    return Member.objects.get(pk=member.pk)


def test_token_deletion_anonymises_and_the_token_stops_working():
    alice = MemberFactory(username="alice")
    api = token_client(alice)
    old_token = member_api_token(alice)
    response = api.post(URL, {"password": DEFAULT_PASSWORD, "confirm": True}, format="json")
    assert response.status_code == 204, response.content
    alice = fresh(alice)
    assert (alice.username, alice.is_active) == (f"deleted-{alice.pk}", False)
    assert member_api_token(alice) != old_token
    assert AuditLog.objects.filter(action="member_delete", actor=alice).count() == 1
    assert api.get("/api/v1/me/").status_code == 401
    # A second try with the same token cannot reach the service again.
    again = api.post(URL, {"password": DEFAULT_PASSWORD, "confirm": True}, format="json")
    assert again.status_code == 401
    assert AuditLog.objects.filter(action="member_delete").count() == 1


def test_session_deletion_ends_the_session():
    alice = MemberFactory(username="alice")
    api = APIClient()
    assert api.login(username="alice", password=DEFAULT_PASSWORD)
    assert api.get("/api/v1/me/").status_code == 200
    response = api.post(URL, {"password": DEFAULT_PASSWORD, "confirm": True}, format="json")
    assert response.status_code == 204, response.content
    assert not fresh(alice).is_active
    assert api.get("/api/v1/me/").status_code in (401, 403)


def test_session_without_csrf_token_is_refused():
    """A cross-site form cannot delete a logged-in member's account: session authentication
    checks the CSRF token."""
    alice = MemberFactory(username="alice")
    api = APIClient(enforce_csrf_checks=True)
    assert api.login(username="alice", password=DEFAULT_PASSWORD)
    response = api.post(URL, {"password": DEFAULT_PASSWORD, "confirm": True}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert fresh(alice).is_active


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "not my password", "confirm": True}, "password"),
        ({"password": "", "confirm": True}, "password"),
        ({"confirm": True}, "password"),
        ({"password": DEFAULT_PASSWORD}, "confirm"),
        ({"password": DEFAULT_PASSWORD, "confirm": False}, "confirm"),
        ({"password": DEFAULT_PASSWORD, "confirm": "maybe"}, "confirm"),
        ({"password": "x" * 5000, "confirm": True}, "password"),
    ],
)
def test_bad_input_is_a_field_error_and_changes_nothing(body, field):
    alice = MemberFactory(username="alice")
    api = token_client(alice)
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert isinstance(response.json()[field], list) and response.json()[field][0]
    alice = fresh(alice)
    assert alice.username == "alice" and alice.is_active
    assert not AuditLog.objects.filter(action="member_delete").exists()
    assert api.get("/api/v1/me/").status_code == 200


def test_wrong_password_message_comes_from_the_service():
    alice = MemberFactory(username="alice")
    body = {"password": "wrong", "confirm": True}
    response = token_client(alice).post(URL, body, format="json")
    assert response.json() == {"password": ["That is not your password."]}


def test_last_superuser_is_refused_with_409_until_another_exists():
    root = MemberFactory(username="root", is_staff=True, is_superuser=True)
    body = {"password": DEFAULT_PASSWORD, "confirm": True}
    response = token_client(root).post(URL, body, format="json")
    assert response.status_code == 409
    assert "last superuser" in response.json()["detail"]
    assert fresh(root).is_active and fresh(root).is_superuser
    MemberFactory(username="root2", is_staff=True, is_superuser=True)
    response = token_client(root).post(URL, body, format="json")
    assert response.status_code == 204
    root = fresh(root)
    assert not (root.is_active or root.is_superuser or root.is_staff)


def test_anonymous_and_banned_are_refused():
    alice = MemberFactory(username="alice")
    staff = MemberFactory(is_staff=True, is_superuser=True)
    body = {"password": DEFAULT_PASSWORD, "confirm": True}
    assert APIClient().post(URL, body, format="json").status_code == 401
    member_ban(member=alice, actor=staff, reason="test")
    response = token_client(alice).post(URL, body, format="json")
    assert response.status_code == 403
    assert fresh(alice).is_active


def test_another_members_password_does_not_delete_either_account():
    alice, bob = (
        MemberFactory(username="alice"),
        MemberFactory(username="bob", password="bobs pw 1"),
    )
    response = token_client(alice).post(
        URL, {"password": "bobs pw 1", "confirm": True}, format="json"
    )
    assert response.status_code == 400 and "password" in response.json()
    assert fresh(alice).is_active and fresh(bob).is_active


def test_deletion_is_throttled_with_the_credentials_scope(monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"credentials": "2/hour"})
    alice = MemberFactory(username="alice")
    api = token_client(alice)
    body = {"password": "wrong", "confirm": True}
    assert [api.post(URL, body, format="json").status_code for _ in range(3)] == [400, 400, 429]
    # Even the right password waits: guessing is bounded.
    right = {"password": DEFAULT_PASSWORD, "confirm": True}
    assert api.post(URL, right, format="json").status_code == 429
    assert fresh(alice).is_active


def test_schema_documents_the_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][URL]["post"]
    assert set(operation["responses"]) >= {"204", "400", "403", "409"}
    body = schema["components"]["schemas"]["AccountDelete"]
    assert set(body["required"]) == {"password", "confirm"}
