"""The embedded default's Celery beat: periodic tasks run by a thread of the web process.

With no ``CELERY_BROKER_URL`` (``make run``) there is no beat process, so the tasks of
``CELERY_BEAT_SCHEDULE`` (hit-and-run evaluation, bonus points, class rules, receipt
verification, chain pushes) would never run. ``manage.py serve`` (what ``make run`` starts)
starts :func:`start` once; each task then runs inline (``Task.apply``) every period of its
schedule entry, errors logged and retried at the next period. With a broker, ``make beat``
does this job and the thread is not started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import autodiscover_modules

log = logging.getLogger(__name__)

FIRST_RUN_SECONDS = 5.0
"""Delay before the first round, so that the server is up first."""


@dataclass
class Job:
    """One schedule entry: its task name, its period in seconds and when it runs next
    (``time.monotonic()`` seconds)."""

    task: str
    period: float
    due: float


def schedule_jobs(
    schedule: dict[str, dict[str, Any]], *, skip: frozenset[str], now: float
) -> list[Job]:
    """The jobs of a ``CELERY_BEAT_SCHEDULE``-shaped dict whose schedule is a period (seconds
    as a number, or a ``timedelta``), leaving out the task names in ``skip``; the first run of
    each is ``FIRST_RUN_SECONDS`` after ``now``. Entries with other schedules (crontab) are
    logged and left out."""
    jobs = []
    for name, entry in schedule.items():
        task, period = entry["task"], entry["schedule"]
        if task in skip:
            continue
        if isinstance(period, timedelta):
            period = period.total_seconds()
        if not isinstance(period, int | float) or period <= 0:
            log.warning("embedded beat: %s has no period in seconds; it is not run", name)
            continue
        jobs.append(Job(task=task, period=float(period), due=now + FIRST_RUN_SECONDS))
    return jobs


def run_due(jobs: list[Job], *, now: float, run: Callable[[str], None]) -> list[str]:
    """Run every job due at ``now`` (monotonic seconds) through ``run(task_name)`` and set its
    next time; a job that raises is logged and runs again at its next period. Returns the names
    of the tasks run."""
    ran = []
    for job in jobs:
        if now < job.due:
            continue
        job.due = now + job.period
        ran.append(job.task)
        try:
            run(job.task)
        except Exception:
            log.exception("embedded beat: %s failed; it runs again in %.0f s", job.task, job.period)
        finally:
            close_old_connections()
    return ran


def run_task(name: str) -> None:
    """Run the registered Celery task ``name`` inline in this thread; its exception is raised."""
    from celery import current_app

    if name not in current_app.tasks:
        autodiscover_modules("tasks")  # each app's tasks.py registers its shared tasks
    current_app.tasks[name].apply(throw=True)


_started = threading.Event()


def start() -> bool:
    """Start the beat thread once per process when ``PBTS_EMBEDDED_BEAT`` is on (the default
    without a broker). Returns ``True`` if this call started it."""
    if not settings.PBTS_EMBEDDED_BEAT or _started.is_set():
        return False
    _started.set()
    # Celery logs every inline task's success at INFO: every few seconds on the console here.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    # The statistics flush has its own in-process thread (tracker.announce_runtime).
    skip = frozenset({"tracker.flush_stats"} if settings.PBTS_INPROCESS_FLUSH else ())
    jobs = schedule_jobs(settings.CELERY_BEAT_SCHEDULE, skip=skip, now=time.monotonic())
    thread = threading.Thread(target=_loop, args=(jobs,), name="pbts-embedded-beat", daemon=True)
    thread.start()
    log.info("embedded beat: %d periodic tasks run in this process", len(jobs))
    return True


def _loop(jobs: list[Job]) -> None:
    while True:
        run_due(jobs, now=time.monotonic(), run=run_task)
        time.sleep(1.0)
