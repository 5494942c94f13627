"""The original contract endpoints (/contract/...), the member's migration API and the
profile block: public status, member-only user reads, staff-only writes, JSON errors with
field messages, never a 500, "not configured" without a chain."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from chain.contracts import record_id
from chain.models import ChainConfig, Migration, MigrationStatus
from chain.tests.apikit import api_for
from chain.tests.sitekit import chain_settings, credit, keyed_member, set_up_contracts
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db
WRITES = ["/contract/init", "/contract/register", "/contract/update", "/contract/migrate"]


# --- without a chain ----------------------------------------------------------------------


def test_status_and_user_say_not_configured(reader):
    reply = Client().get("/contract/status")
    assert reply.status_code == 200
    body = reply.json()
    assert body["configured"] is False and body["status"] == "not configured"
    assert "rpc_url" not in body
    keyed = keyed_member(username="carol")
    credit(keyed.member, 5, 6)
    body = reader.get("/contract/user/carol").json()
    assert body["verified_uploaded"] == 5
    assert body["on_chain"] is None
    assert "blocked" not in body  # private fields stay private


def test_unknown_user_is_a_json_404(reader):
    reply = reader.get("/contract/user/nobody")
    assert reply.status_code == 404
    assert reply["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", WRITES)
def test_writes_are_staff_only(path):
    assert api_for().post(path, {}, format="json").status_code == 401
    assert api_for(MemberFactory()).post(path, {}, format="json").status_code == 403


def test_staff_writes_without_chain_answer_503_not_500(staff):
    keyed = keyed_member(username="dave")
    for path, body in [
        ("/contract/init", {}),
        ("/contract/register", {"username": "dave"}),
        ("/contract/update", {}),
    ]:
        reply = staff.post(path, body, format="json")
        assert reply.status_code == 503, (path, reply.content)
        assert reply.json()["detail"] == "not configured"
    reply = staff.post("/contract/migrate", {"username": keyed.member.username}, format="json")
    assert reply.status_code == 400
    assert "not configured" in reply.json()["detail"]


def test_field_errors(staff):
    reply = staff.post("/contract/register", {}, format="json")
    assert reply.status_code == 400 and "username" in reply.json()
    reply = staff.post("/contract/register", {"username": "ghost"}, format="json")
    assert reply.status_code == 404 and "username" in reply.json()
    keyless = MemberFactory()
    reply = staff.post("/contract/register", {"username": keyless.username}, format="json")
    assert reply.status_code == 400 and "BLS key" in reply.json()["username"][0]
    reply = staff.post("/contract/migrate", {"username": keyless.username, "signature": "x"})
    assert reply.status_code == 400 and "signature" in reply.json()
    reply = staff.post("/contract/init", {"referrer": "0x1234"}, format="json")
    assert reply.status_code in (400, 503)


# --- with a chain ---------------------------------------------------------------------------


def test_init_creates_the_contracts(anvil, staff):
    with chain_settings(anvil):
        reply = staff.post("/contract/init", {}, format="json")
        assert reply.status_code == 201, reply.content
        body = reply.json()
        assert body["reputation"] and body["factory"] and body["chain_id"] == 31337
        assert anvil.dev_private_key(0)[2:] not in reply.content.decode()
        again = staff.post("/contract/init", {}, format="json")
        assert again.status_code == 409
        bad = staff.post("/contract/init", {"referrer": "0xnothex"}, format="json")
        assert bad.status_code in (400, 409)


def test_init_with_a_referrer_outside_the_registry_is_refused(anvil, staff):
    with chain_settings(anvil):
        staff.post("/contract/init", {}, format="json")
        ChainConfig.objects.filter(pk=1).update(reputation_address="")
        reply = staff.post("/contract/init", {"referrer": "0x" + "12" * 20}, format="json")
        assert reply.status_code == 409
        assert "UnknownReferrer" in reply.json()["detail"]


def test_register_and_update_put_members_on_chain(site, staff, reader):
    keyed = keyed_member(username="erin")
    credit(keyed.member, 10, 20)
    reply = staff.post("/contract/register", {"username": "erin"}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["push"]["pushed"] == 1
    body = reader.get("/contract/user/erin").json()
    assert body["record_id"] == "0x" + record_id(keyed.pk).hex()
    assert body["on_chain"]["uploaded"] == 10 and body["on_chain"]["downloaded"] == 20
    credit(keyed.member, 30, 20)
    reply = staff.post("/contract/update", {}, format="json")
    assert reply.status_code == 200
    (batch,) = reply.json()["push"]["batches"]
    assert batch["status"] == "confirmed" and batch["tx_hash"].startswith("0x")
    status = Client().get("/contract/status").json()
    assert status["last_push"]["tx_hash"] == batch["tx_hash"]
    assert status["reputation"] == ChainConfig.objects.get().reputation_address


def test_update_while_rpc_is_down_is_503(own_anvil, staff, reader):
    with chain_settings(own_anvil):
        set_up_contracts()
        keyed = keyed_member(username="frank")
        credit(keyed.member, 1, 1)
        own_anvil.stop()
        reply = staff.post("/contract/update", {}, format="json")
        assert reply.status_code == 503
        assert reply.json()["status"] == "rpc_down"
        assert own_anvil.url not in reply.content.decode()
        assert Client().get("/contract/status").json()["status"] == "rpc_down"
        body = reader.get("/contract/user/frank").json()
        assert body["on_chain"] is None or "error" in (body["on_chain"] or {})


def test_migration_needs_a_referrer(site):
    keyed = keyed_member()
    reply = api_for(keyed.member).post("/api/v1/chain/migrations", {}, format="json")
    assert reply.status_code == 400
    assert "no predecessor" in reply.json()["detail"]


# --- the profile block ----------------------------------------------------------------------


def _profile(member) -> str:
    client = Client()
    assert client.login(username=member.username, password=DEFAULT_PASSWORD)
    response = client.get(reverse("profile"))
    assert response.status_code == 200
    return response.content.decode()


def test_profile_block_without_chain(db):
    keyed = keyed_member()
    assert "Chain: not configured" in _profile(keyed.member)


def test_profile_migration_button_challenge_and_signature(site):
    ChainConfig.objects.filter(pk=1).update(referrer_address="0x" + "ab" * 20)
    keyed = keyed_member()
    client = Client()
    client.login(username=keyed.member.username, password=DEFAULT_PASSWORD)
    html = client.get(reverse("profile")).content.decode()
    assert "Ask for migration" in html
    response = client.post(reverse("chain:migration-request"))
    assert response.status_code == 302
    migration = Migration.objects.get(member=keyed.member)
    html = client.get(reverse("profile")).content.decode()
    from chain.selectors import migration_message_for

    assert migration_message_for(migration).hex() in html
    response = client.post(
        reverse("chain:migration-sign", args=[migration.pk]), {"signature": "garbage"}
    )
    assert response.status_code == 302
    html = client.get(reverse("profile")).content.decode()
    assert "Signature:" in html
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.CHALLENGED
    # Someone else cannot answer it.
    other = MemberFactory()
    intruder = Client()
    intruder.login(username=other.username, password=DEFAULT_PASSWORD)
    intruder.post(
        reverse("chain:migration-sign", args=[migration.pk]),
        {"signature": "0x" + keyed.sign(migration_message_for(migration)).hex()},
    )
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.CHALLENGED
    # Anonymous visitors are sent to log in.
    assert Client().post(reverse("chain:migration-request")).status_code == 302


def test_challenge_expires(site):
    from django.utils import timezone

    ChainConfig.objects.filter(pk=1).update(referrer_address="0x" + "ab" * 20)
    keyed = keyed_member()
    api = api_for(keyed.member)
    challenge = api.post("/api/v1/chain/migrations", {}, format="json").json()
    Migration.objects.filter(pk=challenge["id"]).update(expires_at=timezone.now())
    message = bytes.fromhex(challenge["message"])
    reply = api.post(
        f"/api/v1/chain/migrations/{challenge['id']}/signature",
        {"signature": "0x" + keyed.sign(message).hex()},
        format="json",
    )
    assert reply.status_code == 400 and "expired" in reply.json()["detail"]
    other = api_for(MemberFactory())
    assert other.get(f"/api/v1/chain/migrations/{challenge['id']}").status_code == 404


def test_schema_includes_the_chain_endpoints(staff):
    reply = staff.get("/api/schema/")
    assert reply.status_code == 200
    text = reply.content.decode()
    assert "/contract/status" in text and "/api/v1/chain/migrations" in text
