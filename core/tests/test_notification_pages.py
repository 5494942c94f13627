"""The notifications page, the header badge, mark-read forms and the e-mail opt-in."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import Notification, NotificationSettings
from core.notifications import notify, unread_count
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    member = MemberFactory()
    client.force_login(member)
    return member


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/notifications/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.post("/notifications/read/", {"all": "on"}).status_code == 302


def test_list_shows_own_notifications_only_escaped(client, alice):
    bob = MemberFactory()
    notify(member=alice, kind="k", subject="<b>mine</b>", body="line1\nline2", url="/torrents/1/")
    notify(member=bob, kind="k", subject="bobs secret")
    page = client.get("/notifications/").content.decode()
    assert "&lt;b&gt;mine&lt;/b&gt;" in page and "<b>mine</b>" not in page
    assert "line1<br>line2" in page and 'href="/torrents/1/"' in page
    assert "bobs secret" not in page


def _header(client) -> str:
    return client.get("/").content.decode().split("</nav>")[0]


def _notification_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
    return [q["sql"] for q in queries if "core_notification" in q["sql"]]


def test_header_badge_counts_unread_from_the_cache(client, alice):
    for i in range(3):
        notify(member=alice, kind="k", subject=f"n{i}")
    counts = _notification_queries(client)
    assert len(counts) == 1 and "COUNT" in counts[0].upper()  # first page: one COUNT
    assert _notification_queries(client) == []  # then cached
    assert 'aria-label="3 unread"' in _header(client)
    notify(member=alice, kind="k", subject="n3")  # a new one is shown at once
    assert 'aria-label="4 unread"' in _header(client)
    first = Notification.objects.filter(member=alice).first()
    client.post("/notifications/read/", {"id": first.pk})
    assert 'aria-label="3 unread"' in _header(client)
    client.post("/notifications/read/", {"all": "on"})
    assert "unread" not in _header(client)


def test_badge_cache_is_per_member(client, alice):
    bob = MemberFactory()
    notify(member=bob, kind="k", subject="b")
    assert "unread" not in _header(client)
    client.force_login(bob)
    assert 'aria-label="1 unread"' in _header(client)


def test_mark_one_read_and_others_ids_have_no_effect(client, alice):
    bob = MemberFactory()
    mine = notify(member=alice, kind="k", subject="a")
    theirs = notify(member=bob, kind="k", subject="b")
    response = client.post("/notifications/read/", {"id": theirs.pk})
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert unread_count(alice) == 1
    client.post("/notifications/read/", {"id": mine.pk, "page": 2})
    assert unread_count(alice) == 0 and unread_count(bob) == 1


def test_mark_all_read(client, alice):
    bob = MemberFactory()
    for _ in range(2):
        notify(member=alice, kind="k", subject="a")
    notify(member=bob, kind="k", subject="b")
    response = client.post("/notifications/read/", {"all": "on"}, follow=True)
    assert "2 notifications marked read." in response.content.decode()
    assert unread_count(alice) == 0 and unread_count(bob) == 1


@pytest.mark.parametrize(
    "data", [{}, {"id": "abc"}, {"id": "-3"}, {"id": "1", "all": "on"}, {"id": "9" * 30}]
)
def test_bad_mark_read_input_changes_nothing(client, alice, data):
    notify(member=alice, kind="k", subject="a")
    response = client.post("/notifications/read/", data, follow=True)
    assert response.status_code == 200
    assert "the form was not understood" in response.content.decode()
    assert unread_count(alice) == 1


def test_mark_read_by_get_is_refused(client, alice):
    response = client.get("/notifications/read/")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_unread_filter_and_pagination(client, alice):
    for i in range(30):
        notify(member=alice, kind="k", subject=f"note {i:02d}")
    Notification.objects.filter(member=alice, subject="note 00").update(
        read_at="2026-01-01T00:00:00Z"
    )
    first = client.get("/notifications/").content.decode()
    assert "note 29" in first and "note 00" not in first and "Page 1 of 2" in first
    second = client.get("/notifications/?page=2").content.decode()
    assert "note 00" in second
    unread = client.get("/notifications/?unread=1&page=2").content.decode()
    assert "note 00" not in unread
    assert client.get("/notifications/?page=zzz").status_code == 200


def test_email_opt_in_is_saved_per_member(client, alice):
    bob = MemberFactory()
    client.post("/notifications/settings/", {"email_enabled": "on"})
    assert NotificationSettings.objects.get(member=alice).email_enabled is True
    assert not NotificationSettings.objects.filter(member=bob).exists()
    assert "checked" in client.get("/notifications/").content.decode()
    client.post("/notifications/settings/", {})
    assert NotificationSettings.objects.get(member=alice).email_enabled is False


def test_email_opt_in_without_address_warns(client):
    member = MemberFactory(email="")
    client.force_login(member)
    response = client.post("/notifications/settings/", {"email_enabled": "on"}, follow=True)
    assert "no e-mail address" in response.content.decode()
