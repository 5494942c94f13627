"""The statistics flush's lock (``tracker.tasks.flush_lock``): a PostgreSQL session advisory
lock, so a flush that runs keeps others out, and a worker that dies (its connection gone)
does not hold the next flush back (the cache lock it replaces did, for 300 s)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from tracker import announce_runtime, tasks
from tracker.tests.db_helpers import other_session


def _close_and_wait(session, timeout: float = 10.0) -> None:
    """Close ``session`` and wait (bounded) until its server process has ended: a client's
    close does not wait for the server to let go of the session's locks."""
    pid = session.info.backend_pid
    session.close()
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # a fresh view in this transaction
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
            time.sleep(0.02)
    raise AssertionError(f"the closed session's server process {pid} is still there")


@pytest.fixture
def flushes(monkeypatch):
    """Counts the flushes that ran (the flush itself is tested in test_stats_flush.py)."""
    runs = []
    monkeypatch.setattr(announce_runtime, "flush_now", lambda: runs.append(1) or True)
    return runs


@pytest.mark.django_db
def test_a_running_flush_keeps_the_next_out_and_a_dead_one_does_not(flushes):
    holder = other_session(autocommit=True)  # a worker inside a flush
    assert holder.execute("SELECT pg_try_advisory_lock(%s)", [tasks.FLUSH_LOCK_ID]).fetchone()[0]
    assert tasks.flush_stats() is False and flushes == []
    _close_and_wait(holder)  # SIGKILL: the worker's connection ends, and its lock with it
    assert tasks.flush_stats() is True and flushes == [1]
    # Released after a run: another worker takes it at once.
    other = other_session(autocommit=True)
    try:
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", [tasks.FLUSH_LOCK_ID])
        assert taken.fetchone()[0] is True
    finally:
        other.close()


@pytest.mark.django_db
def test_a_flush_that_fails_releases_the_lock(monkeypatch):
    def broken():
        raise RuntimeError("Redis is down")

    monkeypatch.setattr(announce_runtime, "flush_now", broken)
    with pytest.raises(RuntimeError):
        tasks.flush_stats()
    other = other_session(autocommit=True)
    try:
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", [tasks.FLUSH_LOCK_ID])
        assert taken.fetchone()[0] is True
    finally:
        other.close()
