"""Celery tasks of the receipts app. The beat schedule lives in settings (one place)."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from receipts.services.verify import VerifyOutcome, receipt_batch_verify

VERIFY_LOCK = "lock:receipts.verify_receipts"
RUN_BUDGET_SECONDS = 60.0
"""A run keeps taking full batches for at most this long, then leaves the rest to the next."""


@shared_task(name="receipts.verify_receipts", ignore_result=True)
def verify_receipts() -> int:
    """Verify queued receipts batch after batch (every ``PBTS_VERIFY_SECONDS`` from Celery beat,
    and after each report is committed). Returns how many receipts were settled.

    On PostgreSQL concurrent runs are safe and share the work (each batch is claimed with
    ``FOR UPDATE SKIP LOCKED``); on a database without ``SKIP LOCKED`` (SQLite, the embedded
    default) a cache lock keeps runs from overlapping. A run that dies is safe either way: a
    batch credits only when it commits (``receipts.services.verify``).
    """
    locked = not connection.features.has_select_for_update_skip_locked
    if locked and not cache.add(VERIFY_LOCK, 1, timeout=300):
        return 0
    try:
        settled = 0
        deadline = time.monotonic() + RUN_BUDGET_SECONDS
        while True:
            outcome: VerifyOutcome = receipt_batch_verify()
            settled += outcome.verified + outcome.refused
            full = outcome.claimed >= settings.PBTS_VERIFY_BATCH_SIZE
            if not full or time.monotonic() >= deadline:
                return settled
    finally:
        if locked:
            cache.delete(VERIFY_LOCK)
