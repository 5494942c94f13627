"""``POST /api/v1/members/<username>/hit-and-runs/<id>/forgive/``: staff forgive a hit-and-run
on the API through ``hnr_forgive`` (the history page's service), and the attacks on it."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from core.models import AuditLog, Notification
from tracker.models import HitAndRun, HitAndRunState, Member
from tracker.services.hnr import hnr_evaluate
from tracker.services.members import member_api_token, member_ban
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.tests.test_hnr import AFTER, RULE, SIZE, snatch
from tracker.tests.torrents import upload_torrent

pytestmark = [
    pytest.mark.django_db,
    # The rule of the hit-and-run tests (disabled at 2), and staff tokens without 2FA.
    pytest.mark.usefixtures("_rule_settings"),
]


@pytest.fixture
def _rule_settings():
    with override_settings(
        PBTS_HNR_DISABLE_AFTER=RULE.disable_after,
        PBTS_HNR_WARN_AFTER=RULE.warn_after,
        PBTS_STAFF_REQUIRE_2FA=False,
    ):
        yield


def url(username: str, pk: int | str) -> str:
    return f"/api/v1/members/{username}/hit-and-runs/{pk}/forgive/"


def token_client(member: Member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def hit_and_runs(member: Member, count: int = 1) -> list[HitAndRun]:
    """``count`` hit-and-runs of ``member`` (unmet snatches judged after the window)."""
    uploader = MemberFactory()
    for _ in range(count):
        snatch(member, upload_torrent(uploader, size=SIZE))
    hnr_evaluate(now=AFTER, rule=RULE)
    rows = list(HitAndRun.objects.filter(member=member).order_by("pk"))
    assert [row.state for row in rows] == [HitAndRunState.HIT_AND_RUN] * count
    return rows


def unchanged(row: HitAndRun) -> bool:
    row.refresh_from_db()
    return row.state == HitAndRunState.HIT_AND_RUN and row.forgiven_by_id is None


@pytest.fixture
def member() -> Member:
    return MemberFactory(username="leecher")


@pytest.fixture
def staff() -> Member:
    return MemberFactory(username="mod", is_staff=True)


def test_staff_forgive_with_a_reason_audited_and_the_switch_lifted(member, staff):
    rows = hit_and_runs(member, 2)
    assert Member.objects.get(pk=member.pk).hnr_disabled
    response = token_client(staff).post(
        url("leecher", rows[0].pk), {"reason": "tracker outage"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": rows[0].pk,
        "member": "leecher",
        "torrent_id": rows[0].history.torrent_id,
        "hnr_state": "forgiven",
        "forgiven_by": "mod",
        "forgive_reason": "tracker outage",
        "resolved_at": response.json()["resolved_at"],
        "member_hnr_count": 1,
    }
    assert response.json()["resolved_at"]
    rows[0].refresh_from_db()
    assert (rows[0].state, rows[0].forgiven_by_id) == (HitAndRunState.FORGIVEN, staff.pk)
    fresh = Member.objects.get(pk=member.pk)
    assert (fresh.hnr_count, fresh.hnr_disabled) == (1, False)
    audit = AuditLog.objects.get(action="hnr_forgive")
    assert (audit.actor_id, audit.reason) == (staff.pk, "tracker outage")
    assert Notification.objects.filter(member=member, kind="hnr", subject__icontains="forgiven")


def test_history_rows_give_the_id_to_forgive(member, staff):
    (row,) = hit_and_runs(member)
    listing = token_client(staff).get("/api/v1/members/leecher/history/?section=hnr")
    assert listing.status_code == 200
    assert [r["hnr_id"] for r in listing.json()["results"]] == [row.pk]
    mine = token_client(member).get("/api/v1/me/history/?section=snatched").json()["results"]
    assert [r["hnr_id"] for r in mine] == [row.pk]


def test_session_authentication_works_too(member, staff):
    (row,) = hit_and_runs(member)
    api = APIClient()
    assert api.login(username="mod", password=DEFAULT_PASSWORD)
    response = api.post(url("leecher", row.pk), {}, format="json")
    assert response.status_code == 200
    assert response.json()["forgive_reason"] == ""
    row.refresh_from_db()
    assert row.state == HitAndRunState.FORGIVEN


def test_a_member_cannot_forgive_their_own_or_anyone_elses(member):
    (row,) = hit_and_runs(member)
    other = MemberFactory()
    for actor in (member, other):
        response = token_client(actor).post(url("leecher", row.pk), {"reason": "x"}, format="json")
        assert response.status_code == 403
        assert response.json() == {"detail": "Staff only."}
    assert APIClient().post(url("leecher", row.pk), {}, format="json").status_code == 401
    assert unchanged(row)
    assert not AuditLog.objects.filter(action="hnr_forgive").exists()


def test_staff_cannot_forgive_their_own(staff):
    (row,) = hit_and_runs(staff)
    response = token_client(staff).post(url("mod", row.pk), {"reason": "mine"}, format="json")
    assert response.status_code == 403
    assert "own standing" in response.json()["detail"]
    assert unchanged(row)


def test_staff_cannot_forgive_another_staff_member_but_a_superuser_can(staff):
    colleague = MemberFactory(username="colleague", is_staff=True)
    (row,) = hit_and_runs(colleague)
    response = token_client(staff).post(url("colleague", row.pk), {}, format="json")
    assert response.status_code == 403
    assert "superuser" in response.json()["detail"]
    assert unchanged(row)
    root = MemberFactory(is_staff=True, is_superuser=True)
    assert token_client(root).post(url("colleague", row.pk), {}, format="json").status_code == 200


def test_banned_staff_are_refused(member, staff):
    (row,) = hit_and_runs(member)
    root = MemberFactory(is_staff=True, is_superuser=True)
    member_ban(member=staff, actor=root, reason="abuse")
    response = token_client(staff).post(url("leecher", row.pk), {}, format="json")
    assert response.status_code == 403
    assert unchanged(row)


def test_another_members_id_or_an_unknown_id_is_404(member, staff):
    (row,) = hit_and_runs(member)
    MemberFactory(username="bystander")
    api = token_client(staff)
    for path in (
        url("bystander", row.pk),  # the id exists, but is not this member's
        url("nobody", row.pk),
        url("leecher", row.pk + 1000),
        url("leecher", "9" * 18),  # beyond any id: 404, not a database error
    ):
        response = api.post(path, {}, format="json")
        assert response.status_code == 404, path
        assert "detail" in response.json()
    assert api.post(url("leecher", "9" * 19), {}, format="json").status_code == 404
    assert unchanged(row)


def test_nothing_to_forgive_is_409(member, staff):
    (row,) = hit_and_runs(member)
    api = token_client(staff)
    assert api.post(url("leecher", row.pk), {}, format="json").status_code == 200
    again = api.post(url("leecher", row.pk), {}, format="json")
    assert again.status_code == 409
    assert "nothing to forgive" in again.json()["detail"]
    assert AuditLog.objects.filter(action="hnr_forgive").count() == 1


def test_reason_too_long_is_a_field_error(member, staff):
    (row,) = hit_and_runs(member)
    response = token_client(staff).post(
        url("leecher", row.pk), {"reason": "x" * 2001}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert unchanged(row)


def test_schema_documents_the_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/members/{username}/hit-and-runs/{id}/forgive/"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "403", "404", "409"}
    assert "hnr_id" in schema["components"]["schemas"]["HistoryRow"]["properties"]
