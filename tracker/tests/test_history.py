"""History pages and API (tracker.views.history, tracker.api.history): sections, figures,
staff access and forgiveness, and the attacks on them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tracker.models import HitAndRun, HitAndRunState, TorrentHistory
from tracker.services.hnr import hnr_evaluate
from tracker.services.torrents import torrent_moderate
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.tests.test_announce import Clock, announce, clock  # noqa: F401 (fixture)
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db
GIB = 1024**3


@pytest.fixture
def setup():
    """A member with a snatch that became a hit-and-run, and one they seeded well."""
    uploader, member = MemberFactory(), MemberFactory()
    bad = upload_torrent(uploader, name="left-behind.bin", size=GIB)
    good = upload_torrent(uploader, name="well-seeded.bin", size=GIB)
    long_ago = timezone.now() - timedelta(days=30)
    TorrentHistory.objects.create(
        member=member, torrent=bad, completed_at=long_ago, downloaded=GIB, uploaded=GIB // 4
    )
    TorrentHistory.objects.create(
        member=member,
        torrent=good,
        completed_at=long_ago,
        downloaded=GIB,
        uploaded=2 * GIB,
        seed_seconds=4 * 86400 + 3 * 3600,
    )
    hnr_evaluate()
    return member, bad, good


def api(member) -> APIClient:
    client = APIClient()
    client.force_authenticate(type(member).objects.get(pk=member.pk))  # as a request loads it
    return client


def test_my_history_shows_snatches_with_figures_and_states(client, setup):
    member, _, _ = setup
    client.force_login(member)
    page = client.get(reverse("history")).content.decode()
    assert "left-behind.bin" in page and "well-seeded.bin" in page
    assert "Hit-and-run</span>" in page and "Satisfied</span>" in page
    assert "4 d 3 h" in page and "2.00" in page and "0.25" in page
    assert 'class="hnr-count">1<' in page
    hnr = client.get(reverse("history"), {"section": "hnr"}).content.decode()
    assert "left-behind.bin" in hnr and "well-seeded.bin" not in hnr
    assert "Forgive" not in hnr  # members never get the staff form


def test_uploads_section_lists_pending_and_rejected_with_the_reason(client):
    member, staff = MemberFactory(), MemberFactory(is_staff=True)
    rejected = upload_torrent(member, name="bad-upload.bin")
    torrent_moderate(torrent=rejected, actor=staff, status="rejected", reason="wrong category")
    client.force_login(member)
    page = client.get(reverse("history"), {"section": "uploads"}).content.decode()
    assert "bad-upload.bin" in page and "Rejected" in page and "wrong category" in page
    rows = api(member).get("/api/v1/me/history/", {"section": "uploads"}).json()["results"]
    assert [(r["name"], r["status"], r["moderation_reason"]) for r in rows] == [
        ("bad-upload.bin", "rejected", "wrong category")
    ]


def test_seeding_and_leeching_sections_read_the_current_peers(client, clock):  # noqa: F811
    from tracker.models import ClientPrefix

    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    uploader, member = MemberFactory(), MemberFactory()
    seeded = upload_torrent(uploader, name="seeding-this.bin")
    leeched = upload_torrent(uploader, name="leeching-this.bin")
    announce(client, member, seeded, left=0, peer=b"-TR4060-a")
    announce(client, member, leeched, left=10, peer=b"-TR4060-b")
    client.force_login(member)
    seeding = client.get(reverse("history"), {"section": "seeding"}).content.decode()
    leeching = client.get(reverse("history"), {"section": "leeching"}).content.decode()
    assert "seeding-this.bin" in seeding and "leeching-this.bin" not in seeding
    assert "leeching-this.bin" in leeching and "seeding-this.bin" not in leeching
    rows = api(member).get("/api/v1/me/history/", {"section": "seeding"}).json()["results"]
    assert [r["name"] for r in rows] == ["seeding-this.bin"]


def test_history_is_paginated(client):
    uploader, member = MemberFactory(), MemberFactory()
    now = timezone.now()
    for i in range(30):
        TorrentHistory.objects.create(
            member=member,
            torrent=upload_torrent(uploader, name=f"t{i:02}.bin"),
            completed_at=now - timedelta(minutes=i),
        )
    client.force_login(member)
    first = client.get(reverse("history")).content.decode()
    second = client.get(reverse("history"), {"page": 2}).content.decode()
    assert "t00.bin" in first and "t29.bin" not in first
    assert "t29.bin" in second and "Page 2 of 2" in second


def test_api_history_rows_and_bad_section(setup):
    member, _, _ = setup
    rows = api(member).get("/api/v1/me/history/").json()["results"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["left-behind.bin"]["hnr_state"] == "hit_and_run"
    assert by_name["well-seeded.bin"]["seed_seconds"] == 4 * 86400 + 3 * 3600
    assert by_name["well-seeded.bin"]["ratio"] == 2.0
    assert by_name["left-behind.bin"]["hnr_deadline"]
    response = api(member).get("/api/v1/me/history/", {"section": "everything"})
    assert response.status_code == 400 and "section" in response.json()
    me = api(member).get("/api/v1/me/").json()
    assert (me["hnr_count"], me["hnr_disabled"]) == (1, False)


def test_profile_shows_the_count(client, setup):
    member, _, _ = setup
    viewer = MemberFactory()
    client.force_login(viewer)
    page = client.get(reverse("member_detail", args=[member.username])).content.decode()
    assert 'class="hnr-count">1<' in page
    assert reverse("member_history", args=[member.username]) not in page


def test_a_member_cannot_see_another_members_history(client, setup):
    member, _, _ = setup
    snoop = MemberFactory()
    client.force_login(snoop)
    page = client.get(reverse("member_history", args=[member.username]))
    assert page.status_code == 403 and b"left-behind.bin" not in page.content
    response = api(snoop).get(f"/api/v1/members/{member.username}/history/")
    assert response.status_code == 403


def test_a_member_cannot_forgive_through_the_page(client, setup):
    member, _, _ = setup
    row = HitAndRun.objects.get(member=member, state=HitAndRunState.HIT_AND_RUN)
    for actor in (member, MemberFactory()):
        client.force_login(actor)
        response = client.post(reverse("hnr_forgive", args=[row.pk]), {"reason": "mine"})
        assert response.status_code == 403
    row.refresh_from_db()
    assert row.state == HitAndRunState.HIT_AND_RUN
    assert client.get(reverse("hnr_forgive", args=[row.pk])).status_code == 405


def test_staff_see_a_members_history_and_forgive_there(client, setup):
    member, _, _ = setup
    staff = MemberFactory(is_staff=True, password=DEFAULT_PASSWORD)
    client.force_login(staff)
    url = reverse("member_history", args=[member.username])
    page = client.get(url, {"section": "hnr"}).content.decode()
    row = HitAndRun.objects.get(member=member, state=HitAndRunState.HIT_AND_RUN)
    assert "left-behind.bin" in page and reverse("hnr_forgive", args=[row.pk]) in page
    response = client.post(reverse("hnr_forgive", args=[row.pk]), {"reason": "client bug"})
    assert response.status_code == 302 and response["Location"] == f"{url}?section=hnr"
    row.refresh_from_db()
    assert (row.state, row.forgive_reason) == (HitAndRunState.FORGIVEN, "client bug")
    member.refresh_from_db()
    assert member.hnr_count == 0
    rows = api(staff).get(f"/api/v1/members/{member.username}/history/?section=hnr").json()
    assert [r["hnr_state"] for r in rows["results"]] == ["forgiven"]


def test_history_page_query_count_is_bounded(client, setup, django_assert_max_num_queries):
    member, _, _ = setup
    client.force_login(member)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("history")).status_code == 200
