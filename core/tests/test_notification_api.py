"""The notifications API: the caller's list, the unread filter and mark-read."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.notifications import notify, unread_count
from tracker.services.members import member_api_token
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return MemberFactory()


@pytest.fixture
def api(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(alice)}")
    return client


def test_anonymous_is_refused():
    client = APIClient()
    assert client.get("/api/v1/notifications/").status_code in (401, 403)
    assert client.post("/api/v1/notifications/read/", {"all": True}).status_code in (401, 403)
    assert client.get("/api/v1/me/export/").status_code in (401, 403)


def test_list_is_the_callers_only_and_paginated(api, alice):
    bob = MemberFactory()
    first = notify(member=alice, kind="invite_used", subject="one", url="/members/x/")
    notify(member=alice, kind="k", subject="two")
    notify(member=bob, kind="k", subject="bobs")
    body = api.get("/api/v1/notifications/").json()
    assert body["count"] == 2
    assert [row["subject"] for row in body["results"]] == ["two", "one"]
    assert body["results"][1] == {
        "id": first.pk,
        "kind": "invite_used",
        "subject": "one",
        "body": "",
        "url": "/members/x/",
        "created_at": body["results"][1]["created_at"],
        "read_at": None,
    }
    assert api.get("/api/v1/notifications/?page_size=1").json()["next"]


def test_unread_filter(api, alice):
    a = notify(member=alice, kind="k", subject="a")
    notify(member=alice, kind="k", subject="b")
    api.post("/api/v1/notifications/read/", {"ids": [a.pk]}, format="json")
    body = api.get("/api/v1/notifications/?unread=true").json()
    assert [row["subject"] for row in body["results"]] == ["b"]
    assert api.get("/api/v1/notifications/?unread=maybe").status_code == 400


def test_mark_read_ignores_other_members_ids(api, alice):
    bob = MemberFactory()
    mine = notify(member=alice, kind="k", subject="a")
    theirs = notify(member=bob, kind="k", subject="b")
    response = api.post("/api/v1/notifications/read/", {"ids": [theirs.pk]}, format="json")
    assert response.json() == {"marked": 0, "unread": 1}
    assert unread_count(bob) == 1
    response = api.post("/api/v1/notifications/read/", {"ids": [mine.pk, theirs.pk]}, format="json")
    assert response.json() == {"marked": 1, "unread": 0}
    assert unread_count(bob) == 1


def test_mark_all_read(api, alice):
    bob = MemberFactory()
    notify(member=alice, kind="k", subject="a")
    notify(member=bob, kind="k", subject="b")
    response = api.post("/api/v1/notifications/read/", {"all": True}, format="json")
    assert response.json() == {"marked": 1, "unread": 0}
    assert unread_count(bob) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"all": False},
        {"ids": [1], "all": True},
        {"ids": ["x"]},
        {"ids": [0]},
        {"ids": "1,2"},
        {"ids": list(range(1, 1002))},
        {"ids": [2**70]},
    ],
)
def test_mark_read_bad_input_is_a_field_error(api, alice, payload):
    notify(member=alice, kind="k", subject="a")
    response = api.post("/api/v1/notifications/read/", payload, format="json")
    assert response.status_code == 400
    assert "ids" in response.json()
    assert unread_count(alice) == 1


def test_endpoints_are_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert "get" in paths["/api/v1/notifications/"]
    assert "post" in paths["/api/v1/notifications/read/"]
    assert "get" in paths["/api/v1/me/export/"]
