"""Celery tasks of the tracker app. The beat schedule lives in settings (one place)."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from tracker import announce_runtime
from tracker.services.hnr import hnr_evaluate

FLUSH_LOCK = "lock:tracker.flush_stats"


@shared_task(name="tracker.flush_stats", ignore_result=True)
def flush_stats() -> bool:
    """Flush accumulated announce credits to the database (every ``PBTS_FLUSH_SECONDS`` from
    Celery beat). Guarded by a cache lock so overlapping runs do no double work; a run that
    dies is safe anyway (batches are applied once by id). Returns ``True`` if a batch applied.
    """
    if not cache.add(FLUSH_LOCK, 1, timeout=300):
        return False
    try:
        return announce_runtime.flush_now()
    finally:
        cache.delete(FLUSH_LOCK)


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
