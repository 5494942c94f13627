"""Celery tasks of the moderation app. The beat schedule lives in settings (one place)."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from moderation.services.classes import class_rules_apply

CLASS_RULES_LOCK = "lock:moderation.apply_class_rules"


@shared_task(name="moderation.apply_class_rules", ignore_result=True)
def apply_class_rules() -> int:
    """Promote and demote members by ``PBTS_CLASS_RULES`` (every
    ``PBTS_CLASS_RULES_SECONDS`` from Celery beat). Idempotent; guarded by a cache lock so
    overlapping runs do no double work. Returns how many members changed class (0 when
    another run holds the lock)."""
    if not cache.add(CLASS_RULES_LOCK, 1, timeout=3600):
        return 0
    try:
        return sum(class_rules_apply().values())
    finally:
        cache.delete(CLASS_RULES_LOCK)
