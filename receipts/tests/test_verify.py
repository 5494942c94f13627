"""The verify task: batch verification with bisection, exactly-once credit to both members."""

from __future__ import annotations

import pytest

from receipts.bls import aggregate
from receipts.models import AggregateSignature, Receipt, Report, Status
from receipts.services import verify
from receipts.services.reports import AggregateInput, SingleInput, report_submit
from receipts.services.verify import receipt_batch_verify
from receipts.tasks import verify_receipts
from receipts.tests.conftest import (
    LAST_PIECE,
    PIECE,
    Actor,
    b64,
    make_actor,
    make_receipt,
    seen,
    vector,
)
from reputation.models import Ledger

pytestmark = pytest.mark.django_db


def report(uploader: Actor, singles=(), groups=()) -> Report:
    """Submit through the service: ``singles`` are ``(data, signature)``; ``groups`` are
    ``([data, ...], signature)``."""
    detail = report_submit(
        reporter=uploader.member,
        receipts=[SingleInput(b64(d), b64(s)) for d, s in singles],
        aggregates=[AggregateInput([b64(d) for d in ds], b64(s)) for ds, s in groups],
    )
    return detail.report


def ledger(actor: Actor) -> tuple[int, int]:
    row = Ledger.objects.get(member=actor.member)
    return row.verified_uploaded, row.verified_downloaded


def test_valid_receipts_are_verified_and_both_members_credited_exactly(
    backend_name, uploader, downloader, swarm
):
    other = make_actor()
    seen(other.member, swarm)
    first = make_receipt(uploader, downloader, swarm, index=0)
    last = make_receipt(uploader, downloader, swarm, index=6)
    a = make_receipt(uploader, downloader, swarm, index=1)
    b = make_receipt(uploader, other, swarm, index=1)
    rep = report(
        uploader,
        singles=[(first, downloader.sign(first)), (last, downloader.sign(last))],
        groups=[([a, b], aggregate([downloader.sign(a), other.sign(b)]))],
    )
    outcome = receipt_batch_verify()
    assert (outcome.claimed, outcome.verified, outcome.refused) == (4, 4, 0)
    assert outcome.credited_bytes == 3 * PIECE + LAST_PIECE
    # Hole 9: upload to the uploader, download to each downloader, nothing else.
    assert ledger(uploader) == (3 * PIECE + LAST_PIECE, 0)
    assert ledger(downloader) == (0, 2 * PIECE + LAST_PIECE)
    assert ledger(other) == (0, PIECE)
    assert all(
        r.status == Status.VERIFIED and r.is_credited and r.verified_at
        for r in Receipt.objects.all()
    )
    assert AggregateSignature.objects.get().status == Status.VERIFIED
    rep.refresh_from_db()
    assert (rep.status, rep.queued, rep.verified, rep.refused) == ("done", 0, 4, 0)
    assert rep.credited_bytes == 3 * PIECE + LAST_PIECE


def test_a_bad_signature_is_refused_without_holding_back_the_good_ones(
    backend_name, uploader, downloader, swarm
):
    data = [make_receipt(uploader, downloader, swarm, index=i) for i in range(3)]
    forged = uploader.sign(data[1])  # the uploader signs for the downloader
    rep = report(
        uploader,
        singles=[
            (data[0], downloader.sign(data[0])),
            (data[1], forged),
            (data[2], downloader.sign(data[2])),
        ],
    )
    outcome = receipt_batch_verify()
    assert (outcome.verified, outcome.refused) == (2, 1)
    rows = list(Receipt.objects.order_by("position"))
    assert [r.status for r in rows] == ["verified", "refused", "verified"]
    assert rows[1].reason == "signature: does not verify (hole 8)" and not rows[1].is_credited
    assert ledger(uploader) == (2 * PIECE, 0) and ledger(downloader) == (0, 2 * PIECE)
    rep.refresh_from_db()
    assert (rep.status, rep.verified, rep.refused) == ("done", 2, 1)


def test_an_aggregate_that_does_not_verify_refuses_all_its_receipts(uploader, downloader, swarm):
    a = make_receipt(uploader, downloader, swarm, index=0)
    b = make_receipt(uploader, downloader, swarm, index=1)
    c = make_receipt(uploader, downloader, swarm, index=2)
    report(
        uploader,
        singles=[(c, downloader.sign(c))],
        groups=[([a, b], aggregate([downloader.sign(a), downloader.sign(c)]))],
    )
    receipt_batch_verify()
    agg = AggregateSignature.objects.get()
    assert agg.status == Status.REFUSED
    assert agg.reason == "aggregate: the aggregate signature does not verify (hole 8)"
    assert set(agg.receipts.values_list("status", flat=True)) == {"refused"}
    assert Receipt.objects.get(aggregate__isnull=True).status == Status.VERIFIED
    assert ledger(uploader) == (PIECE, 0)


BAD_G2 = [
    "deserialization_fails_not_in_G2",
    "deserialization_fails_not_in_curve",
    "deserialization_fails_with_wrong_c_flag",
    "deserialization_fails_xre_greater_than_modulus",
    "deserialization_fails_infinity_with_false_b_flag",
    "deserialization_succeeds_infinity_with_true_b_flag",
]


@pytest.mark.parametrize("name", BAD_G2)
def test_signatures_off_curve_outside_subgroup_or_infinity_are_refused(
    uploader, downloader, swarm, name
):
    sig = bytes.fromhex(vector(f"deserialization_G2/{name}")["input"]["signature"][2:])
    assert len(sig) == 96
    good = make_receipt(uploader, downloader, swarm, index=0)
    bad = make_receipt(uploader, downloader, swarm, index=1)
    report(uploader, singles=[(good, downloader.sign(good)), (bad, sig)])
    outcome = receipt_batch_verify()
    assert (outcome.verified, outcome.refused) == (1, 1)
    assert Receipt.objects.get(position=1).reason.startswith("signature: does not verify")


def test_a_crash_between_verification_and_commit_credits_nothing_and_a_rerun_credits_once(
    uploader, downloader, swarm, monkeypatch
):
    data = [make_receipt(uploader, downloader, swarm, index=i) for i in range(3)]
    report(uploader, singles=[(d, downloader.sign(d)) for d in data])
    real_count = verify._count

    def crash(*args, **kwargs):
        real_count(*args, **kwargs)  # statuses and credit are written, the commit never comes
        raise RuntimeError("worker killed")

    monkeypatch.setattr(verify, "_count", crash)
    with pytest.raises(RuntimeError):
        receipt_batch_verify()
    assert ledger(uploader) == (0, 0) and ledger(downloader) == (0, 0)
    assert set(Receipt.objects.values_list("status", "is_credited")) == {("queued", False)}
    assert Report.objects.get().queued == 3

    monkeypatch.setattr(verify, "_count", real_count)
    assert receipt_batch_verify().verified == 3
    assert receipt_batch_verify().claimed == 0
    assert ledger(uploader) == (3 * PIECE, 0) and ledger(downloader) == (0, 3 * PIECE)


def test_the_task_run_twice_credits_once(uploader, downloader, swarm):
    data = make_receipt(uploader, downloader, swarm)
    report(uploader, singles=[(data, downloader.sign(data))])
    assert verify_receipts.delay().get() == 1
    assert verify_receipts() == 0
    assert ledger(uploader) == (PIECE, 0) and ledger(downloader) == (0, PIECE)


def test_the_task_takes_batch_after_batch(uploader, downloader, swarm, settings):
    settings.PBTS_VERIFY_BATCH_SIZE = 2
    data = [make_receipt(uploader, downloader, swarm, index=i) for i in range(5)]
    report(uploader, singles=[(d, downloader.sign(d)) for d in data])
    assert verify_receipts() == 5
    assert ledger(uploader) == (5 * PIECE, 0)


def test_a_batch_is_filled_with_whole_aggregates_and_an_oversize_one_goes_alone(
    uploader, downloader, swarm
):
    data = [make_receipt(uploader, downloader, swarm, index=i) for i in range(4)]
    sig = aggregate([downloader.sign(d) for d in data[:3]])
    report(uploader, singles=[(data[3], downloader.sign(data[3]))], groups=[(data[:3], sig)])
    first = receipt_batch_verify(limit=2)
    assert (first.claimed, first.verified) == (1, 1)  # the single; the group does not fit
    second = receipt_batch_verify(limit=2)
    assert (second.claimed, second.verified) == (3, 3)  # alone, the group goes whole
    assert receipt_batch_verify(limit=2).claimed == 0


def test_submission_triggers_verification_after_commit(
    uploader, downloader, swarm, django_capture_on_commit_callbacks
):
    data = make_receipt(uploader, downloader, swarm)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report(uploader, singles=[(data, downloader.sign(data))])
    assert len(callbacks) == 1
    assert Receipt.objects.get().status == Status.VERIFIED  # Celery eager: verified inline
    assert ledger(uploader) == (PIECE, 0)


def test_an_aggregate_row_without_queued_receipts_never_blocks_the_queue(uploader):
    rep = Report.objects.create(reporter=uploader.member, status="done")
    AggregateSignature.objects.create(report=rep, position=0, signature=b"\0" * 96, size=1)
    assert receipt_batch_verify().claimed == 0
    assert AggregateSignature.objects.get().status == Status.REFUSED
