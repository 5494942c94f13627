"""Key registration (``POST /register``, ``/api/v1/keys/``), rotation and revocation."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from core.errors import InvalidInput, NotPermitted
from core.models import AuditLog
from receipts.bls import pop_prove
from receipts.models import BLSKey, key_fingerprint
from receipts.services.keys import bls_key_revoke
from receipts.tests.conftest import api_for, b64, new_keypair, post_json, vector
from tracker.services.members import member_ban
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/keys/"


def key_body(sk: int, pk: bytes, **extra) -> dict:
    return {"public_key": b64(pk), "pop": b64(pop_prove(sk)), **extra}


@pytest.fixture
def member():
    return MemberFactory()


def test_register_on_the_original_path_makes_the_active_key(member):
    sk, pk = new_keypair()
    response = post_json(api_for(member), "/register", key_body(sk, pk))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["public_key"] == b64(pk)
    assert body["fingerprint"] == key_fingerprint(pk)
    assert body["is_active"] is True and body["replaced"] is None
    key = BLSKey.objects.get(member=member)
    assert bytes(key.public_key) == pk and key.revoked_at is None


def test_registering_the_active_key_again_changes_nothing(member):
    sk, pk = new_keypair()
    assert post_json(api_for(member), KEYS, key_body(sk, pk)).status_code == 201
    again = post_json(api_for(member), "/register", key_body(sk, pk))
    assert again.status_code == 200
    assert BLSKey.objects.filter(member=member).count() == 1


def test_rotation_revokes_the_old_key_and_keeps_the_history(member):
    client = api_for(member)
    sk1, pk1 = new_keypair()
    sk2, pk2 = new_keypair()
    assert post_json(client, KEYS, key_body(sk1, pk1)).status_code == 201
    response = post_json(client, KEYS, key_body(sk2, pk2))
    assert response.status_code == 201
    assert response.json()["replaced"] == key_fingerprint(pk1)
    keys = {bytes(k.public_key): k for k in BLSKey.objects.filter(member=member)}
    assert keys[pk1].revoked_at is not None and keys[pk1].revoke_reason == "rotated"
    assert keys[pk2].revoked_at is None
    listed = client.get(KEYS).json()
    assert [k["public_key"] for k in listed] == [b64(pk2), b64(pk1)]
    assert [k["is_active"] for k in listed] == [True, False]


def test_a_key_is_never_registered_twice(member):
    other = MemberFactory()
    sk1, pk1 = new_keypair()
    sk2, pk2 = new_keypair()
    assert post_json(api_for(member), KEYS, key_body(sk1, pk1)).status_code == 201
    taken = post_json(api_for(other), KEYS, key_body(sk1, pk1))
    assert taken.status_code == 409 and "public_key" in taken.json()
    # Nor the member's own revoked key.
    assert post_json(api_for(member), KEYS, key_body(sk2, pk2)).status_code == 201
    back = post_json(api_for(member), KEYS, key_body(sk1, pk1))
    assert back.status_code == 409
    assert BLSKey.objects.get(member=member, revoked_at__isnull=True).public_key == pk2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("public_key", "%%%", "Not valid base64"),
        ("public_key", b64(b"\x80" * 47), "Must be 48 bytes"),
        ("public_key", b64(b"\x80" * 49), "Must be 48 bytes"),
        ("pop", "", "Must be 96 bytes"),
        ("pop", b64(b"\x80" * 95), "Must be 96 bytes"),
    ],
)
def test_malformed_fields_are_refused_with_a_field_message(member, field, value, message):
    sk, pk = new_keypair()
    body = key_body(sk, pk)
    body[field] = value
    response = post_json(api_for(member), "/register", body)
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not BLSKey.objects.exists()


BAD_G1 = [
    "deserialization_fails_infinity_with_false_b_flag",
    "deserialization_fails_not_in_G1",
    "deserialization_fails_not_in_curve",
    "deserialization_fails_with_b_flag_and_a_flag_true",
    "deserialization_fails_with_b_flag_and_x_nonzero",
    "deserialization_fails_with_mask_bits_001",
    "deserialization_fails_with_mask_bits_011",
    "deserialization_fails_with_mask_bits_111",
    "deserialization_fails_with_wrong_c_flag",
    "deserialization_fails_x_equal_to_modulus",
    "deserialization_fails_x_greater_than_modulus",
    # A valid encoding of the identity, which KeyValidate refuses.
    "deserialization_succeeds_infinity_with_true_b_flag",
]


@pytest.mark.parametrize("name", BAD_G1)
def test_points_off_curve_outside_subgroup_identity_or_non_canonical_are_refused(
    member, backend_name, name
):
    pk = bytes.fromhex(vector(f"deserialization_G1/{name}")["input"]["pubkey"][2:])
    assert len(pk) == 48
    sk, _ = new_keypair()
    body = {"public_key": b64(pk), "pop": b64(pop_prove(sk))}
    response = post_json(api_for(member), "/register", body)
    assert response.status_code == 400
    assert "KeyValidate failed" in response.json()["public_key"][0]
    assert not BLSKey.objects.exists()


def test_a_proof_of_another_key_is_refused(member, backend_name):
    _, pk = new_keypair()
    other_sk, _ = new_keypair()
    body = {"public_key": b64(pk), "pop": b64(pop_prove(other_sk))}
    response = post_json(api_for(member), "/register", body)
    assert response.status_code == 400
    assert "proof of possession does not verify" in response.json()["pop"][0]
    assert not BLSKey.objects.exists()


def test_user_id_must_name_the_caller(member):
    sk, pk = new_keypair()
    other = MemberFactory()
    refused = post_json(api_for(member), "/register", key_body(sk, pk, user_id=other.username))
    assert refused.status_code == 403 and "user_id" in refused.json()
    assert not BLSKey.objects.exists()
    by_name = post_json(api_for(member), "/register", key_body(sk, pk, user_id=member.username))
    assert by_name.status_code == 201
    by_id = post_json(api_for(member), "/register", key_body(sk, pk, user_id=member.pk))
    assert by_id.status_code == 200


def test_registration_needs_a_token_and_a_member_in_good_standing(member):
    sk, pk = new_keypair()
    assert post_json(api_for(None), "/register", key_body(sk, pk)).status_code == 401
    member_ban(member=member, actor=MemberFactory(is_staff=True), reason="cheating")
    assert post_json(api_for(member), "/register", key_body(sk, pk)).status_code == 403
    assert not BLSKey.objects.exists()


def test_the_database_allows_one_active_key_per_member(member):
    sk1, pk1 = new_keypair()
    sk2, pk2 = new_keypair()
    BLSKey.objects.create(member=member, public_key=pk1, pop=pop_prove(sk1))
    with pytest.raises(IntegrityError), transaction.atomic():
        BLSKey.objects.create(member=member, public_key=pk2, pop=pop_prove(sk2))


def test_staff_revoke_a_key_with_an_audited_reason(member):
    staff = MemberFactory(is_staff=True)
    sk, pk = new_keypair()
    key = BLSKey.objects.create(member=member, public_key=pk, pop=pop_prove(sk))
    with pytest.raises(NotPermitted):
        bls_key_revoke(key=key, actor=MemberFactory(), reason="no")
    bls_key_revoke(key=key, actor=staff, reason="reported stolen")
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoke_reason == "reported stolen"
    log = AuditLog.objects.get(action="bls_key_revoke")
    assert log.actor == staff and log.reason == "reported stolen"
    with pytest.raises(InvalidInput):
        bls_key_revoke(key=key, actor=staff, reason="again")
