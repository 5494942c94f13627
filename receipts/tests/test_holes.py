"""One test (at least) per hole of docs/origin.md section 6 that concerns keys, receipts or
reports, each showing the attack fails. Holes 2, 3, 5, 6, 7, 8, 9 and 10 apply here."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import pytest
from django.db import connection
from py_ecc.bls import G2ProofOfPossession
from py_ecc.bls.g2_primitives import (
    G1_to_pubkey,
    G2_to_signature,
    pubkey_to_G1,
    signature_to_G2,
)
from py_ecc.optimized_bls12_381 import G1, G2, add, multiply, neg

from receipts import format as receipt_format
from receipts import rules
from receipts.bls import DST_POP, aggregate, get_backend, sign
from receipts.models import BLSKey, Receipt, Status
from receipts.services import reports as report_services
from receipts.services.reports import AggregateInput, SingleInput, report_submit
from receipts.services.verify import receipt_batch_verify
from receipts.tests.conftest import (
    LAST_PIECE,
    PIECE,
    api_for,
    b64,
    group,
    make_actor,
    make_receipt,
    new_keypair,
    post_json,
    seen,
    single,
)
from reputation.models import Ledger

pytestmark = pytest.mark.django_db


def statuses(response) -> list[tuple[str, str]]:
    return [(r["status"], r["reason"]) for r in response.json()["receipts"]]


def ledger(actor) -> tuple[int, int]:
    row = Ledger.objects.get(member=actor.member)
    return row.verified_uploaded, row.verified_downloaded


# --- hole 2: private keys handled by the server and written to logs ---------------------------


def test_hole2_keygen_is_off_by_default(uploader):
    response = api_for(uploader.member).post("/keygen")
    assert response.status_code == 404
    assert "make your key on your own machine" in response.json()["detail"]
    assert "private_key" not in response.json()


def test_hole2_dev_keygen_makes_a_working_pair_and_logs_and_stores_nothing(
    uploader, settings, caplog
):
    settings.PBTS_DEV_KEYGEN = True
    with caplog.at_level(logging.DEBUG):
        response = api_for(uploader.member).post("/keygen")
    assert response.status_code == 200
    body = response.json()
    assert response["Cache-Control"] == "private, no-store"
    sk = int(body["private_key"], 16)
    assert b64(G2ProofOfPossession.SkToPk(sk)) == body["public_key"]
    assert body["private_key"] not in caplog.text and str(sk) not in caplog.text
    assert BLSKey.objects.count() == 1  # the fixture's own key only: nothing stored


@pytest.mark.parametrize("path", ["/attest", "/register", "/report", "/api/v1/keys/"])
@pytest.mark.parametrize("field", ["private_key", "sk", "secretKey"])
def test_hole2_a_request_carrying_a_private_key_is_refused_and_not_echoed(
    uploader, caplog, path, field
):
    secret = "7" * 64
    with caplog.at_level(logging.DEBUG):
        response = post_json(api_for(uploader.member), path, {field: secret, "piece_index": 0})
    assert response.status_code == 400
    assert response.json() == {field: [rules.NEVER_SEND_PRIVATE_KEY]}
    assert secret not in response.content.decode() and secret not in caplog.text


def test_hole2_a_private_key_inside_a_report_entry_is_refused_too(uploader):
    body = {"receipts": [{"receipt": "QUJD", "signature": "QUJD", "private_key": "7" * 64}]}
    response = post_json(api_for(uploader.member), "/report", body)
    assert response.status_code == 400
    assert response.json() == {"receipts[0].private_key": [rules.NEVER_SEND_PRIVATE_KEY]}
    assert not Receipt.objects.exists()


def test_hole2_no_model_has_a_place_for_a_private_key():
    from django.apps import apps

    for model in apps.get_app_config("receipts").get_models():
        names = {f.name for f in model._meta.get_fields()}
        assert not rules.private_key_fields(dict.fromkeys(names)), model


# --- hole 3: users identified by an optional user_id ------------------------------------------


def test_hole3_user_id_cannot_make_a_report_someone_elses(uploader, downloader, swarm):
    body = {
        "user_id": str(downloader.member.pk),
        "receipts": [single(make_receipt(uploader, downloader, swarm), downloader)],
    }
    response = post_json(api_for(uploader.member), "/report", body)
    assert response.status_code == 403 and "user_id" in response.json()
    assert not Receipt.objects.exists()


# --- hole 5: receipts not bound to the reporter -------------------------------------------------


def test_hole5_a_member_cannot_report_receipts_made_out_to_someone_else(
    uploader, downloader, swarm
):
    thief = make_actor()
    data = make_receipt(uploader, downloader, swarm)
    response = post_json(api_for(thief.member), "/report", {"receipts": [single(data, downloader)]})
    assert statuses(response) == [("refused", rules.NOT_REPORTER_KEY)]


def test_hole5_a_fresh_key_signing_to_itself_mints_nothing(uploader, swarm):
    sk, pk = new_keypair()  # never registered: not a member's key
    fresh = make_actor(register=False)
    fresh.sk, fresh.pk = sk, pk
    data = make_receipt(uploader, fresh, swarm)
    response = post_json(api_for(uploader.member), "/report", {"receipts": [single(data, fresh)]})
    assert statuses(response) == [("refused", rules.UNKNOWN_DOWNLOADER)]
    # Nor can the reporter sign for themselves: uploader and downloader keys must differ.
    own = make_receipt(uploader, make_actor(), swarm)
    own = own[:125] + uploader.pk + own[173:]
    response = post_json(api_for(uploader.member), "/report", {"receipts": [single(own, uploader)]})
    assert statuses(response)[0][1] == "receipt: uploader_pk and downloader_pk are the same key"


def test_hole5_the_downloader_must_be_a_member_with_a_registered_key(uploader, swarm):
    outsider = make_actor(register=False)  # a member, but without a key
    seen(outsider.member, swarm)
    data = make_receipt(uploader, outsider, swarm)
    response = post_json(
        api_for(uploader.member), "/report", {"receipts": [single(data, outsider)]}
    )
    assert statuses(response) == [("refused", rules.UNKNOWN_DOWNLOADER)]


# --- hole 6: piece size unsigned --------------------------------------------------------------


def test_hole6_credit_is_the_signed_piece_length_and_it_must_match_the_torrent(
    uploader, downloader, swarm
):
    inflated = make_receipt(uploader, downloader, swarm, index=6, length=PIECE)
    honest = make_receipt(uploader, downloader, swarm, index=6)
    body = {"receipts": [single(inflated, downloader), single(honest, downloader)]}
    response = post_json(api_for(uploader.member), "/report", body)
    assert [s for s, _ in statuses(response)] == ["refused", "queued"]
    assert "(hole 6)" in statuses(response)[0][1]
    receipt_batch_verify()
    assert ledger(uploader) == (LAST_PIECE, 0)


# --- hole 7: replays ----------------------------------------------------------------------------


def test_hole7_duplicates_inside_one_report_are_credited_once(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    other = make_actor()
    seen(other.member, swarm)
    second = make_receipt(uploader, other, swarm)
    body = {
        "receipts": [single(data, downloader), single(data, downloader)],
        "aggregates": [group([(second, other), (data, downloader)])],
    }
    response = post_json(api_for(uploader.member), "/report", body)
    assert statuses(response) == [
        ("queued", ""),
        ("refused", "duplicate: the same receipt as receipts[0] in this report (hole 7)"),
    ]
    agg = response.json()["aggregates"][0]
    assert agg["status"] == "refused" and "receipts[1]: duplicate" in agg["reason"]
    receipt_batch_verify()
    assert ledger(uploader) == (PIECE, 0)


def test_hole7_receipt_ids_survive_a_restart(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    client = api_for(uploader.member)
    post_json(client, "/report", {"receipts": [single(data, downloader)]})
    receipt_batch_verify()
    # Nothing lives in process memory: a new process sees the id in PostgreSQL.
    again = post_json(client, "/report", {"receipts": [single(data, downloader)]})
    assert statuses(again) == [("refused", rules.ALREADY_REPORTED)]
    assert ledger(uploader) == (PIECE, 0)


def test_hole7_moving_bytes_between_fields_gives_another_id_and_no_valid_signature(
    uploader, downloader, swarm
):
    data = make_receipt(uploader, downloader, swarm)
    rid = receipt_format.Receipt.from_bytes(data).receipt_id
    signature = downloader.sign(data)
    blst = get_backend("blst")
    # Every field boundary of the fixed layout: move a byte across it, either way.
    for edge in (16, 17, 49, 69, 73, 77, 125, 173):
        for shifted in (
            data[: edge - 1] + data[edge : edge + 1] + data[edge - 1 : edge] + data[edge + 1 :],
            data[:edge] + data[edge - 1 : edge] + data[edge:-1],
        ):
            if shifted == data:
                continue
            assert hashlib.sha256(shifted).digest() != rid
            assert not blst.verify(downloader.pk, shifted, signature)
    # A tampered time bucket passes every database check, but not the signature.
    tampered = data[:173] + (int.from_bytes(data[173:], "big") - 1).to_bytes(8, "big")
    response = post_json(
        api_for(uploader.member),
        "/report",
        {"receipts": [{"receipt": b64(tampered), "signature": b64(signature)}]},
    )
    assert statuses(response) == [("queued", "")]
    receipt_batch_verify()
    assert Receipt.objects.get().reason == rules.BAD_SIGNATURE
    assert ledger(uploader) == (0, 0)


def _race(targets: list, monkeypatch) -> list:
    """Run report submissions in threads so that both pass the duplicate pre-check before
    either inserts; the first inserts and holds its uncommitted row while the second tries."""
    barrier = threading.Barrier(len(targets))
    real_check, real_insert = report_services._check, report_services._insert
    order = threading.local()

    def check(*args, **kwargs):
        real_check(*args, **kwargs)
        barrier.wait(timeout=20)
        if order.rank:
            time.sleep(0.3)  # the second inserts while the first holds its row

    def insert(*args, **kwargs):
        real_insert(*args, **kwargs)
        if not order.rank:
            time.sleep(0.8)  # commit late: the second's insert waits on this row

    monkeypatch.setattr(report_services, "_check", check)
    monkeypatch.setattr(report_services, "_insert", insert)
    results: list = [None] * len(targets)

    def run(rank: int) -> None:
        order.rank = rank
        try:
            results[rank] = targets[rank]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_hole7_two_concurrent_reports_of_one_receipt_only_one_wins(monkeypatch):
    uploader, downloader = make_actor(), make_actor()
    from tracker.tests.torrents import upload_torrent

    torrent = upload_torrent(uploader.member, size=100_000, piece_length=PIECE)
    seen(uploader.member, torrent)
    seen(downloader.member, torrent)
    data = make_receipt(uploader, downloader, torrent)
    entry = SingleInput(b64(data), b64(downloader.sign(data)))

    def submit():
        return report_submit(reporter=uploader.member, receipts=[entry])

    first, second = _race([submit, submit], monkeypatch)
    assert first.singles[0].status == Status.QUEUED
    assert (second.singles[0].status, second.singles[0].reason) == ("refused", rules.LOST_RACE)
    assert Receipt.objects.filter(status__in=["queued", "verified"]).count() == 1
    # Celery eager ran the verification after each commit: credited once.
    assert ledger(uploader) == (PIECE, 0) and ledger(downloader) == (0, PIECE)


@pytest.mark.django_db(transaction=True)
def test_hole7_an_aggregate_losing_a_race_is_refused_whole(monkeypatch):
    uploader, downloader, other = make_actor(), make_actor(), make_actor()
    from tracker.tests.torrents import upload_torrent

    torrent = upload_torrent(uploader.member, size=100_000, piece_length=PIECE)
    seen(uploader.member, torrent)
    seen(downloader.member, torrent)
    seen(other.member, torrent)
    x = make_receipt(uploader, downloader, torrent, index=0)
    y = make_receipt(uploader, other, torrent, index=1)
    signed = group([(y, other), (x, downloader)])

    def single_x():
        return report_submit(
            reporter=uploader.member, receipts=[SingleInput(b64(x), b64(downloader.sign(x)))]
        )

    def group_xy():
        return report_submit(
            reporter=uploader.member,
            aggregates=[AggregateInput(signed["receipts"], signed["signature"])],
        )

    first, second = _race([single_x, group_xy], monkeypatch)
    assert first.singles[0].status == Status.QUEUED
    agg = second.aggregates[0]
    assert agg.aggregate.status == Status.REFUSED
    assert [r.reason for r in agg.receipts] == [
        "aggregate: refused with its group because aggregates[0].receipts[1] was refused",
        rules.LOST_RACE,
    ]
    assert not Receipt.objects.filter(aggregate__isnull=False, status="queued").exists()
    assert ledger(uploader) == (PIECE, 0) and ledger(other) == (0, 0)


# --- hole 8: rogue keys and cancelling signatures -----------------------------------------------


def test_hole8_a_rogue_key_without_proof_of_possession_is_refused(uploader, backend_name):
    victim = make_actor()
    attacker_sk, _ = new_keypair()
    # pk_rogue = sk_a * g1 - pk_victim: then pk_rogue + pk_victim = sk_a * g1, so the attacker
    # alone could sign "for both" in an aggregate of one message.
    rogue = G1_to_pubkey(add(multiply(G1, attacker_sk), neg(pubkey_to_G1(victim.pk))))
    msg = b"one piece"
    forged = sign(attacker_sk, msg)
    assert get_backend("blst").key_validate(rogue)  # a valid point: only the PoP stops it
    assert G2ProofOfPossession.FastAggregateVerify([rogue, victim.pk], msg, forged)
    # The best proof the attacker can make: its own key's signature over the rogue key.
    attempt = G2ProofOfPossession._CoreSign(attacker_sk, rogue, DST_POP)
    body = {"public_key": b64(rogue), "pop": b64(attempt)}
    response = post_json(api_for(uploader.member), "/register", body)
    assert response.status_code == 400 and "pop" in response.json()
    assert not BLSKey.objects.filter(public_key=rogue).exists()


def test_hole8_invalid_signatures_summing_to_valid_are_refused(
    uploader, downloader, swarm, backend_name
):
    """The old server summed the signatures and ran one aggregate check."""
    m1 = make_receipt(uploader, downloader, swarm, index=0)
    m2 = make_receipt(uploader, downloader, swarm, index=1)
    delta = multiply(G2, 987654321)
    s1 = G2_to_signature(add(signature_to_G2(downloader.sign(m1)), delta))
    s2 = G2_to_signature(add(signature_to_G2(downloader.sign(m2)), neg(delta)))
    blst = get_backend("blst")  # the demonstration; the verify task uses backend_name
    assert not blst.verify(downloader.pk, m1, s1) and not blst.verify(downloader.pk, m2, s2)
    assert blst.aggregate_verify([downloader.pk] * 2, [m1, m2], aggregate([s1, s2]))
    body = {"receipts": [{"receipt": b64(m), "signature": b64(s)} for m, s in ((m1, s1), (m2, s2))]}
    post_json(api_for(uploader.member), "/report", body)
    outcome = receipt_batch_verify()
    assert (outcome.verified, outcome.refused) == (0, 2)
    assert ledger(uploader) == (0, 0) and ledger(downloader) == (0, 0)


# --- hole 9: accounting --------------------------------------------------------------------------


def test_hole9_the_reporter_gets_upload_only_and_the_downloader_is_debited(
    uploader, downloader, swarm
):
    Ledger.objects.filter(member=uploader.member).update(uploaded=10, downloaded=20)
    data = [make_receipt(uploader, downloader, swarm, index=i) for i in (0, 6)]
    body = {"receipts": [single(d, downloader) for d in data]}
    post_json(api_for(uploader.member), "/report", body)
    receipt_batch_verify()
    assert ledger(uploader) == (PIECE + LAST_PIECE, 0)
    assert ledger(downloader) == (0, PIECE + LAST_PIECE)
    announced = Ledger.objects.get(member=uploader.member)
    assert (announced.uploaded, announced.downloaded) == (10, 20)  # announce figures untouched


# --- hole 10: no realm binding, an hour in the future -------------------------------------------


def test_hole10_a_receipt_for_another_tracker_is_refused(uploader, downloader, swarm):
    foreign = receipt_format.realm_id("Other tracker", "https://other.example.org")
    data = make_receipt(uploader, downloader, swarm, realm=foreign)
    response = post_json(
        api_for(uploader.member), "/report", {"receipts": [single(data, downloader)]}
    )
    assert statuses(response) == [("refused", rules.OTHER_REALM)]


def test_hole10_the_future_is_allowed_one_bucket_of_skew_not_an_hour(uploader, downloader, swarm):
    now = time.time()
    current = receipt_format.time_bucket(now)
    next_bucket = make_receipt(uploader, downloader, swarm, index=0, bucket=current + 1)
    hour = make_receipt(uploader, downloader, swarm, index=1, when=now + 3600)
    two = make_receipt(uploader, downloader, swarm, index=2, bucket=current + 2)
    body = {"receipts": [single(d, downloader) for d in (next_bucket, hour, two)]}
    response = post_json(api_for(uploader.member), "/report", body)
    [ok, far, beyond] = statuses(response)
    assert ok == ("queued", "")
    assert far[1] == beyond[1] == "time: more than 1 time bucket(s) in the future (hole 10)"
