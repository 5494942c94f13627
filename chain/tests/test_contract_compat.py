"""The original PBTS /contract shapes (docs/chain.md, "Compatibility with the original /contract
API"): every endpoint answers the original's keys as well as ours, refuses the original's
password and size fields with a 400 naming them, keeps its security model (members-only user
reads, staff-only writes, sizes from the contract or the verified ledger), and its responses
match the OpenAPI schema."""

from __future__ import annotations

import copy
import json

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from eth_account import Account
from jsonschema import Draft202012Validator

from chain import client as client_module
from chain.api.serializers import REFUSED_FIELDS
from chain.models import ChainConfig, Migration, PushBatch
from chain.selectors import CHAIN_NOT_CONFIGURED_MESSAGE, ZERO_ADDRESS, original_ratio
from chain.tests.apikit import api_for
from chain.tests.sitekit import chain_settings, credit, keyed_member, set_up_contracts
from core.models import AuditLog
from reputation.models import Ledger
from tracker.services.members import member_ban
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

WRITES = ["/contract/init", "/contract/register", "/contract/update", "/contract/migrate"]
PASSWORD_FIELDS = ["salt", "password_hash", "passwordHash"]
SIZE_FIELDS = ["download_size", "upload_size", "downloadSize", "uploadSize"]
SETUP_FIELDS = ["private_key", "rpc_url", "factory_address"]
SAMPLE_VALUES = {
    "salt": "pepper",
    "password_hash": "0x" + "ab" * 32,
    "passwordHash": "0x" + "cd" * 32,
    "download_size": 0,
    "upload_size": 10**15,
    "downloadSize": 1,
    "uploadSize": 10**15,
    "private_key": "0x" + "11" * 32,
    "rpc_url": "http://127.0.0.1:8545",
    "factory_address": "0x" + "22" * 20,
}


# --- the schema: responses are checked against /api/schema/ ----------------------------------


@pytest.fixture(scope="module")
def openapi():
    """The OpenAPI document as ``/api/schema/`` serves it (drf-spectacular's generator)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(schema, default=str))


def _json_schema(node):
    """OpenAPI 3.0 to JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def conforms(openapi: dict, path: str, method: str, reply) -> None:
    """Assert that ``reply`` is documented for ``path``/``method`` with its status code and
    that its body matches the documented schema."""
    operation = openapi["paths"][path][method]
    documented = operation["responses"].get(str(reply.status_code))
    assert documented, f"{method} {path}: {reply.status_code} not documented"
    schema = documented["content"]["application/json"]["schema"]
    root = {"components": _json_schema(copy.deepcopy(openapi["components"])), **schema}
    errors = list(Draft202012Validator(root).iter_errors(reply.json()))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_schema_describes_the_original_keys(openapi):
    schemas = openapi["components"]["schemas"]
    user = schemas["OriginalUser"]
    assert set(user["required"]) == {"username", "downloadSize", "uploadSize", "ratio"}
    assert user["properties"]["ratio"].get("nullable") is True
    assert {"success", "user", "sizes_from"} <= set(schemas["ContractUser"]["required"])
    assert {"success", "reputation_address", "referrer_address"} <= set(
        schemas["ContractStatus"]["required"]
    )
    assert {"success", "error"} <= set(schemas["ContractError"]["required"])
    paths = openapi["paths"]
    assert {"401", "403", "404"} <= set(paths["/contract/user/{name}"]["get"]["responses"])
    for path in WRITES:
        operation = paths[path]["post"]
        assert {"400", "401", "403", "503"} <= set(operation["responses"])
        for field in REFUSED_FIELDS:
            assert f"`{field}`" in operation["description"]
    assert paths["/contract/status"]["get"].get("security", [{}]) == [{}]  # public


class _Reply:
    def __init__(self, status_code: int, body: dict) -> None:
        self.status_code, self._body = status_code, body

    def json(self) -> dict:
        return self._body


def test_the_conformance_check_catches_a_broken_body(openapi):
    good = {
        "success": True,
        "user": {"username": "a", "downloadSize": 0, "uploadSize": 1, "ratio": None},
        "sizes_from": "contract",
        "contract_address": None,
        "reputation_address": None,
        "username": "a",
        "record_id": None,
        "verified_uploaded": 1,
        "verified_downloaded": 0,
        "imported": None,
        "published": None,
        "on_chain": None,
    }
    conforms(openapi, "/contract/user/{name}", "get", _Reply(200, good))
    for broken in (
        {**good, "user": {"username": "a", "downloadSize": "0", "uploadSize": 1, "ratio": 1}},
        {key: value for key, value in good.items() if key != "success"},
        {**good, "sizes_from": "request"},
    ):
        with pytest.raises(AssertionError):
            conforms(openapi, "/contract/user/{name}", "get", _Reply(200, broken))
    with pytest.raises(AssertionError):
        conforms(openapi, "/contract/user/{name}", "get", _Reply(500, good))


# --- without a chain ----------------------------------------------------------------------


def test_status_without_chain_says_so_in_the_original_keys(openapi):
    reply = Client().get("/contract/status")
    assert reply.status_code == 200
    body = reply.json()
    assert body["success"] is False
    assert body["error"] == CHAIN_NOT_CONFIGURED_MESSAGE
    assert body["configured"] is False and body["connected"] is False
    assert body["reputation_address"] is None and body["referrer_address"] is None
    assert body["account_address"] is None and body["factory_address"] is None
    assert "rpc_url" not in body  # the original showed it to anyone
    conforms(openapi, "/contract/status", "get", reply)


def test_user_without_chain_gives_ledger_sizes_and_success_false(reader, openapi):
    keyed = keyed_member(username="carol")
    credit(keyed.member, 5, 10)
    Ledger.objects.filter(member=keyed.member).update(imported_uploaded=1, imported_downloaded=2)
    reply = reader.get("/contract/user/carol")
    assert reply.status_code == 200
    body = reply.json()
    assert body["success"] is False
    assert "not configured" in body["error"] and "ledger" in body["error"]
    assert body["user"] == {
        "username": "carol",
        "downloadSize": 12,
        "uploadSize": 6,
        "ratio": 0.5,
    }
    assert body["sizes_from"] == "ledger"
    assert body["contract_address"] is None and body["reputation_address"] is None
    # Today's fields are still there.
    assert body["verified_uploaded"] == 5 and body["on_chain"] is None
    assert "salt" not in body["user"] and "passwordHash" not in body["user"]
    conforms(openapi, "/contract/user/{name}", "get", reply)


def test_ratio_is_null_when_nothing_was_downloaded(reader):
    keyed = keyed_member(username="seeder")
    credit(keyed.member, 7, 0)
    reply = reader.get("/contract/user/seeder")
    assert reply.json()["user"]["ratio"] is None
    assert b"Infinity" not in reply.content  # the original's Flask answer was not JSON
    assert original_ratio(0, 0) is None
    assert original_ratio(3, 4) == 0.75


def test_user_is_for_signed_in_members_only(openapi):
    keyed = keyed_member(username="hidden")
    credit(keyed.member, 1, 1)
    anonymous = api_for().get("/contract/user/hidden")
    assert anonymous.status_code == 401
    body = anonymous.json()
    assert body["success"] is False and body["error"]
    assert "user" not in body and "record_id" not in body and "hidden" not in body["error"]
    conforms(openapi, "/contract/user/{name}", "get", anonymous)
    assert Client().get("/contract/user/hidden").status_code in (401, 403)
    banned = member_ban(
        member=MemberFactory(), actor=MemberFactory(is_staff=True), reason="cheating"
    )
    refused = api_for(banned).get("/contract/user/hidden")
    assert refused.status_code == 403 and refused.json()["success"] is False
    # A member's session works as well as a token.
    session = Client()
    assert session.login(username=MemberFactory().username, password=DEFAULT_PASSWORD)
    assert session.get("/contract/user/hidden").json()["user"]["username"] == "hidden"


def test_unknown_user_is_a_404_with_success_false(reader, openapi):
    reply = reader.get("/contract/user/nobody")
    assert reply.status_code == 404
    assert reply.json()["success"] is False
    conforms(openapi, "/contract/user/{name}", "get", reply)


@pytest.mark.parametrize("path", WRITES)
def test_writes_stay_staff_only_and_say_so_in_the_original_keys(path, openapi):
    anonymous = api_for().post(path, {"username": "x"}, format="json")
    assert anonymous.status_code == 401
    assert anonymous.json()["success"] is False
    member = api_for(MemberFactory()).post(path, {"username": "x"}, format="json")
    assert member.status_code == 403
    assert member.json() == {"detail": "Staff only.", "success": False, "error": "Staff only."}
    conforms(openapi, path, "post", member)
    assert not AuditLog.objects.filter(action__startswith="chain").exists()


@pytest.mark.parametrize("field", sorted(REFUSED_FIELDS))
@pytest.mark.parametrize("path", WRITES)
def test_original_fields_are_refused_not_ignored(staff, path, field, openapi):
    keyed = keyed_member(username="victim")
    credit(keyed.member, 3, 3)
    body = {field: SAMPLE_VALUES[field]}
    if path != "/contract/init":
        body["username"] = "victim"
    reply = staff.post(path, body, format="json")
    assert reply.status_code == 400, reply.content
    data = reply.json()
    assert data[field] == [REFUSED_FIELDS[field]]
    assert data["success"] is False
    assert f"{field}: {REFUSED_FIELDS[field]}" in data["error"]
    if field in PASSWORD_FIELDS:
        assert data[field] == ["PBTS never stores password material on chain; remove this field."]
    elif field in SIZE_FIELDS:
        assert "verified ledger" in data[field][0]
    else:
        assert field in SETUP_FIELDS
        assert "operator" in data[field][0] or "environment" in data[field][0]
    # Nothing was done: no transaction, no migration, no audit row, no secret echoed.
    assert not PushBatch.objects.exists() and not Migration.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="chain").exists()
    assert str(SAMPLE_VALUES[field]) not in reply.content.decode()
    conforms(openapi, path, "post", reply)


def test_refused_fields_are_reported_with_the_other_errors_and_in_forms(staff):
    reply = staff.post(
        "/contract/register", {"password_hash": "0x00", "uploadSize": 5}, format="json"
    )
    assert reply.status_code == 400
    assert {"username", "password_hash", "uploadSize", "success", "error"} == set(reply.json())
    keyed = keyed_member(username="formed")
    form = staff.post("/contract/update", {"username": "formed", "salt": "s"})  # multipart
    assert form.status_code == 400 and "salt" in form.json()
    assert keyed.member.pk and not PushBatch.objects.exists()


def test_init_accepts_the_original_referrer_address_but_not_two_values(staff):
    reply = staff.post(
        "/contract/init",
        {"referrer": "0x" + "12" * 20, "referrer_address": "0x" + "34" * 20},
        format="json",
    )
    assert reply.status_code == 400
    assert "referrer_address" in reply.json() and reply.json()["success"] is False


def test_malformed_json_and_wrong_method_answer_success_false(staff):
    reply = staff.post("/contract/update", "{", content_type="application/json")
    assert reply.status_code == 400
    assert reply.json()["success"] is False and reply.json()["error"]
    wrong_method = staff.get("/contract/update")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["success"] is False and "GET" in wrong_method.json()["error"]


def test_writes_without_chain_say_not_configured(staff, openapi):
    keyed_member(username="dave")
    for path, body in [
        ("/contract/init", {}),
        ("/contract/register", {"username": "dave"}),
        ("/contract/update", {"username": "dave"}),
        ("/contract/update", {}),
    ]:
        reply = staff.post(path, body, format="json")
        assert reply.status_code == 503, (path, reply.content)
        data = reply.json()
        assert data["success"] is False
        assert data["error"] == CHAIN_NOT_CONFIGURED_MESSAGE
        assert data["detail"] == "not configured" and data["status"] == "not_configured"
        conforms(openapi, path, "post", reply)
    reply = staff.post("/contract/migrate", {"username": "dave"}, format="json")
    assert reply.status_code == 400
    assert reply.json()["success"] is False and "not configured" in reply.json()["error"]
    conforms(openapi, "/contract/migrate", "post", reply)
    reply = staff.post("/contract/register", {"username": "ghost"}, format="json")
    assert reply.status_code == 404
    assert reply.json()["username"] == ["No such member."]
    assert reply.json()["error"] == "username: No such member."


# --- with a chain ---------------------------------------------------------------------------


def test_status_and_init_answer_the_original_keys(anvil, staff, openapi):
    with chain_settings(anvil):
        reply = staff.post("/contract/init", {}, format="json")
        assert reply.status_code == 201, reply.content
        body = reply.json()
        assert body["success"] is True and "error" not in body
        assert body["reputation_address"] == body["reputation"]
        assert body["reputation_address"] == ChainConfig.objects.get().reputation_address
        assert body["referrer_address"] == ZERO_ADDRESS  # the original's answer without one
        assert body["message"] == "Reputation contract initialized."
        assert anvil.dev_private_key(0)[2:] not in reply.content.decode()
        conforms(openapi, "/contract/init", "post", reply)
        first = body["reputation_address"]
        status = Client().get("/contract/status")
        data = status.json()
        assert data["success"] is True and data["reputation_address"] == first
        assert data["factory_address"] == data["factory"] and data["factory_address"]
        assert data["account_address"] == Account.from_key(anvil.dev_private_key(0)).address
        assert "rpc_url" not in data
        conforms(openapi, "/contract/status", "get", status)
        # A successor by the original's field name.
        ChainConfig.objects.filter(pk=1).update(reputation_address="")
        reply = staff.post("/contract/init", {"referrer_address": first}, format="json")
        assert reply.status_code == 201, reply.content
        assert reply.json()["referrer_address"] == first
        assert reply.json()["reputation_address"] not in (first, None)
        again = staff.post("/contract/init", {}, format="json")
        assert again.status_code == 409
        assert again.json()["success"] is False and again.json()["error"]
        conforms(openapi, "/contract/init", "post", again)


def test_register_update_and_user_read_the_contract(site, staff, reader, openapi):
    keyed = keyed_member(username="erin")
    credit(keyed.member, 10, 20)
    before = reader.get("/contract/user/erin").json()
    # Not on the contract yet: what the contract holds, as the original answered (zeros).
    assert before["success"] is True and before["sizes_from"] == "contract"
    assert before["user"] == {"username": "erin", "downloadSize": 0, "uploadSize": 0, "ratio": None}
    reply = staff.post("/contract/register", {"username": "erin"}, format="json")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["success"] is True and body["username"] == "erin"
    (batch,) = body["push"]["batches"]
    assert body["tx_hash"] == batch["tx_hash"] and body["tx_hash"].startswith("0x")
    assert body["user"] == {"username": "erin", "downloadSize": 20, "uploadSize": 10, "ratio": 0.5}
    assert body["sizes_from"] == "contract" and body["member"]["username"] == "erin"
    assert body["reputation_address"] == ChainConfig.objects.get().reputation_address
    conforms(openapi, "/contract/register", "post", reply)
    # The ledger moves on; the user endpoint shows what the contract holds until a push.
    credit(keyed.member, 30, 20)
    shown = reader.get("/contract/user/erin")
    data = shown.json()
    assert data["success"] is True and data["sizes_from"] == "contract"
    assert data["user"]["uploadSize"] == 10 and data["verified_uploaded"] == 30
    assert data["contract_address"] == data["reputation_address"] == body["reputation_address"]
    conforms(openapi, "/contract/user/{name}", "get", shown)
    reply = staff.post("/contract/update", {"username": "erin"}, format="json")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["success"] is True and body["username"] == "erin"
    assert (body["upload_size"], body["download_size"]) == (30, 20)
    assert body["user"]["ratio"] == 1.5
    conforms(openapi, "/contract/update", "post", reply)
    assert reader.get("/contract/user/erin").json()["user"]["uploadSize"] == 30
    everyone = staff.post("/contract/update", {}, format="json")
    assert everyone.status_code == 200
    data = everyone.json()
    assert data["success"] is True and data["username"] is None and data["tx_hash"] is None
    assert "user" not in data
    conforms(openapi, "/contract/update", "post", everyone)


def test_a_reverted_push_is_success_false(site, staff, monkeypatch, openapi):
    """Hole 11: the original reported a reverted transaction as success."""
    keyed = keyed_member(username="gas")
    credit(keyed.member, 4, 4)
    monkeypatch.setattr(client_module, "GAS_MARGIN", 0.5)
    reply = staff.post("/contract/update", {"username": "gas"}, format="json")
    assert reply.status_code == 200
    body = reply.json()
    assert body["success"] is False and "out of gas" in body["error"]
    assert body["user"]["uploadSize"] == 0 and body["sizes_from"] == "contract"
    conforms(openapi, "/contract/update", "post", reply)


def test_migrate_answers_the_original_keys(site, staff, openapi):
    ChainConfig.objects.filter(pk=1).update(referrer_address="0x" + "ab" * 20)
    keyed_member(username="mover")
    reply = staff.post("/contract/migrate", {"username": "mover"}, format="json")
    assert reply.status_code == 201, reply.content
    body = reply.json()
    assert body["success"] is True and body["username"] == "mover"
    assert body["status"] == "challenged" and body["tx_hash"] is None
    assert body["reputation_address"] == ChainConfig.objects.get().reputation_address
    assert len(bytes.fromhex(body["message"])) == 148
    conforms(openapi, "/contract/migrate", "post", reply)
    bad = staff.post(
        "/contract/migrate",
        {"username": "mover", "migration_id": body["id"], "signature": "0x" + "01" * 96},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["success"] is False
    assert "signature" in bad.json()
    conforms(openapi, "/contract/migrate", "post", bad)
    status = Client().get("/contract/status").json()
    assert status["referrer_address"] == "0x" + "ab" * 20


def test_user_while_rpc_is_down_falls_back_to_the_ledger(own_anvil, staff, reader, openapi):
    with chain_settings(own_anvil):
        set_up_contracts()
        keyed = keyed_member(username="frank")
        credit(keyed.member, 6, 3)
        assert staff.post("/contract/register", {"username": "frank"}, format="json").json()[
            "success"
        ]
        own_anvil.stop()
        from django.core.cache import cache

        cache.clear()
        reply = reader.get("/contract/user/frank")
        assert reply.status_code == 200
        body = reply.json()
        assert body["success"] is False and "could not be read" in body["error"]
        assert body["sizes_from"] == "ledger" and body["user"]["uploadSize"] == 6
        assert own_anvil.url not in reply.content.decode()
        conforms(openapi, "/contract/user/{name}", "get", reply)
        down = staff.post("/contract/update", {}, format="json")
        assert down.status_code == 503
        assert down.json()["success"] is False and down.json()["status"] == "rpc_down"
        conforms(openapi, "/contract/update", "post", down)
