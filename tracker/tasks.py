"""Celery tasks of the tracker app. The beat schedule lives in settings (one place)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.core.cache import cache
from django.db import DatabaseError, connection

from tracker import announce_runtime
from tracker.services.hnr import hnr_evaluate

FLUSH_LOCK = "lock:tracker.flush_stats"  # the cache lock, on databases other than PostgreSQL
#: The flush's PostgreSQL advisory lock (a session lock: a worker that dies, killed or cut
#: off, loses its connection and the lock with it).
FLUSH_LOCK_ID = int.from_bytes(
    hashlib.sha256(b"tracker.flush_stats").digest()[:8], "big", signed=True
)


@contextmanager
def flush_lock() -> Iterator[bool]:
    """Hold the statistics flush's lock for the block; yields whether it was taken (``False``:
    another flush runs now).

    On PostgreSQL a session advisory lock (``FLUSH_LOCK_ID``): a SIGKILLed or OOM-killed worker
    holds it no longer than its connection lives, so the next flush runs at once (a cache lock
    with a lifetime, as before, held every flush back for its 300 s, and also when its delete
    failed because Redis, the cache, was down). Elsewhere (the embedded SQLite default, one
    process) the cache lock.
    """
    if connection.vendor != "postgresql":
        taken = cache.add(FLUSH_LOCK, 1, timeout=300)
        try:
            yield taken
        finally:
            if taken:
                cache.delete(FLUSH_LOCK)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [FLUSH_LOCK_ID])
        taken = cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [FLUSH_LOCK_ID])
            except DatabaseError:
                connection.close()  # the session, and its lock, end with the connection


@shared_task(name="tracker.flush_stats", ignore_result=True)
def flush_stats() -> bool:
    """Flush accumulated announce credits to the database (every ``PBTS_FLUSH_SECONDS`` from
    Celery beat). Guarded by :func:`flush_lock` so overlapping runs do no double work; a run
    that dies is safe anyway (batches are applied once by id) and does not hold the next one
    back. Returns ``True`` if a batch applied.
    """
    with flush_lock() as taken:
        if not taken:
            return False
        return announce_runtime.flush_now()


@shared_task(name="tracker.evaluate_hit_and_runs", ignore_result=True)
def evaluate_hit_and_runs() -> int:
    """Judge every open snatch against the hit-and-run rule now (``PBTS_HNR_SECONDS`` from
    Celery beat; ``tracker.services.hnr.hnr_evaluate``, idempotent, serialised by its own
    lock). Returns how many snatch states changed."""
    return hnr_evaluate().changed


@shared_task(name="tracker.award_bonus", ignore_result=True)
def award_bonus() -> int:
    """Award bonus points for the seeding recorded since the last run (every
    ``PBTS_BONUS_AWARD_SECONDS`` from Celery beat; ``tracker.services.bonus``). Idempotent and
    serialised by its own lock, so overlapping runs award once. Returns the members credited."""
    from tracker.services.bonus import bonus_award_seeding

    return bonus_award_seeding().members
