"""Hole 11, racy nonces, with real concurrency: several workers (threads, each with its own
PostgreSQL connection) push at once. The sender lease lets one send at a time; the others
skip. No nonce is used twice, no member is pushed twice, nothing is lost."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chain.client import ChainError
from chain.models import PushBatch, PushItem, TxStatus
from chain.services.push import members_push
from chain.tasks import push_members
from chain.tests.sitekit import chain_settings, credit, keyed_member, set_up_contracts
from chain.waiting import ledgers_waiting_for_push
from pbts_site.celery import app

pytestmark = pytest.mark.django_db(transaction=True)
WORKERS = 4


def test_concurrent_workers_never_share_a_nonce(anvil):
    with chain_settings(anvil, PBTS_CHAIN_BATCH_SIZE=5):
        set_up_contracts()
        members = [keyed_member() for _ in range(20)]
        for keyed in members:
            credit(keyed.member, 100, 50)
        barrier = threading.Barrier(WORKERS)
        outcomes: list[str] = []

        def worker() -> None:
            try:
                barrier.wait(timeout=10)
                result = members_push(max_batches=2)
                outcomes.append(f"pushed {result.pushed}")
            except ChainError as exc:
                outcomes.append(exc.status)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(outcomes) == WORKERS
        assert "busy" in outcomes  # they really overlapped, and the lease held them apart
        while ledgers_waiting_for_push().exists():
            members_push()
        nonces = list(PushBatch.objects.values_list("nonce", flat=True))
        assert len(nonces) == len(set(nonces))
        assert set(PushBatch.objects.values_list("tx_status", flat=True)) == {TxStatus.CONFIRMED}
        assert PushItem.objects.count() == 20  # each member exactly once
        assert PushItem.objects.values("member").distinct().count() == 20


def test_beat_schedules_the_push_task():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["chain.push_members"]
    assert entry["task"] == "chain.push_members"
    assert entry["schedule"] == settings.PBTS_CHAIN_PUSH_SECONDS
    app.loader.import_default_modules()
    assert "chain.push_members" in app.tasks and "chain.send_migration" in app.tasks
    assert push_members() == "not configured"
