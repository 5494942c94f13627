"""The embedded default's beat (core.embedded_beat): the periods of the schedule, each task run
when due and again a period later, a failing task logged and retried, crontab entries left out."""

from __future__ import annotations

from datetime import timedelta

from core.embedded_beat import FIRST_RUN_SECONDS, run_due, schedule_jobs

SCHEDULE = {
    "a": {"task": "app.a", "schedule": 10},
    "b": {"task": "app.b", "schedule": timedelta(minutes=1)},
    "flush": {"task": "app.flush", "schedule": 3.0},
    "cron": {"task": "app.cron", "schedule": "0 * * * *"},
}


def test_jobs_take_their_periods_and_leave_out_skipped_and_crontab_entries():
    jobs = schedule_jobs(SCHEDULE, skip=frozenset({"app.flush"}), now=100.0)
    assert [(j.task, j.period, j.due) for j in jobs] == [
        ("app.a", 10.0, 100.0 + FIRST_RUN_SECONDS),
        ("app.b", 60.0, 100.0 + FIRST_RUN_SECONDS),
    ]


def test_each_task_runs_when_due_and_a_failure_is_retried_a_period_later(caplog):
    jobs = schedule_jobs(SCHEDULE, skip=frozenset({"app.flush"}), now=0.0)
    calls: list[str] = []

    def run(name: str) -> None:
        calls.append(name)
        if name == "app.b":
            raise RuntimeError("database is locked")

    assert run_due(jobs, now=1.0, run=run) == []  # not yet due
    start = FIRST_RUN_SECONDS
    assert run_due(jobs, now=start, run=run) == ["app.a", "app.b"]
    assert "app.b failed" in caplog.text
    assert run_due(jobs, now=start + 9.9, run=run) == []
    assert run_due(jobs, now=start + 10, run=run) == ["app.a"]
    assert run_due(jobs, now=start + 60, run=run) == ["app.a", "app.b"]  # b retried
    assert calls == ["app.a", "app.b", "app.a", "app.a", "app.b"]
