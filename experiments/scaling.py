"""Throughput scaling: one operation run flat out by 1, 2, 4, 8 workers for ``duration``
seconds each, as processes (CPU-bound BLS: Python threads share one interpreter lock) or
threads (the API, whose time is spent in Python, SQLite and the view code).

Throughput at n workers is the operations all workers completed divided by the longest
worker's wall time; scaling efficiency is ``throughput_n / (n * throughput_1)`` (1.0: perfect
linear scaling). With c cores, efficiency past n = c is bounded by about c / n.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Operation = Callable[[int], Any]
OpFactory = Callable[[], Operation]


@dataclass(frozen=True)
class WorkerRun:
    """What one worker did: operations completed in ``seconds`` of wall time, using
    ``cpu_seconds`` of CPU time (its own thread's): ``cpu_seconds / seconds`` is the share of a
    CPU it got, below 1.0 when other workers or other programs competed for the cores."""

    worker: int
    operations: int
    seconds: float
    cpu_seconds: float


@dataclass
class ScalingPoint:
    """The runs of ``workers`` workers started together."""

    workers: int
    runs: list[WorkerRun]

    @property
    def operations(self) -> int:
        return sum(run.operations for run in self.runs)

    @property
    def seconds(self) -> float:
        return max(run.seconds for run in self.runs)

    @property
    def cpu_share(self) -> float:
        """CPUs the workers used on average: their CPU seconds over the run's wall seconds."""
        return sum(run.cpu_seconds for run in self.runs) / self.seconds

    @property
    def per_cpu_second(self) -> float:
        """Operations per CPU second of the workers: what a core would do if it were theirs
        alone (it hardly moves with the box's load, unlike the throughput)."""
        return self.operations / max(sum(run.cpu_seconds for run in self.runs), 1e-9)

    @property
    def throughput(self) -> float:
        """Operations per second, all workers together."""
        return self.operations / self.seconds


@dataclass
class Scaling:
    """One workload's scaling curve."""

    workload: str
    mode: str  # "processes" or "threads"
    what: str
    points: list[ScalingPoint] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.workload}_{self.mode}"

    def efficiency(self, point: ScalingPoint) -> float:
        """``(throughput_n / n) / (throughput_b / b)`` with b the fewest workers measured (1 by
        default, which gives ``throughput_n / (n * throughput_1)``)."""
        base = min(self.points, key=lambda p: p.workers)
        return (point.throughput / point.workers) / (base.throughput / base.workers)


def _loop(worker: int, make_op: OpFactory, seconds: float, barrier: Any) -> WorkerRun:
    op = make_op()
    barrier.wait()
    count = 0
    cpu = time.thread_time()
    start = time.perf_counter()
    end = start + seconds
    while True:
        if op(count) is False:
            raise RuntimeError(f"operation {count} of worker {worker} returned False")
        count += 1
        now = time.perf_counter()
        if now >= end:
            return WorkerRun(worker, count, now - start, time.thread_time() - cpu)


def _process_main(worker: int, make_op: OpFactory, seconds: float, barrier: Any, queue: Any):
    try:
        queue.put(_loop(worker, make_op, seconds, barrier))
    except BaseException as exc:
        barrier.abort()
        queue.put(RuntimeError(f"worker {worker}: {exc!r}"))


def run_processes(make_op: OpFactory, workers: int, seconds: float) -> ScalingPoint:
    """Fork ``workers`` processes; each builds its operation, then all start together.

    Raises:
        RuntimeError: a worker failed (its error is quoted) or did not report in time.
    """
    from django.db import connections

    connections.close_all()  # no SQLite connection is shared with a forked child
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_process_main, args=(w, make_op, seconds, barrier, queue))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=120)
        results = [queue.get(timeout=seconds + 120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise errors[0]
    return ScalingPoint(workers, sorted(results, key=lambda r: r.worker))


def run_threads(make_op: OpFactory, workers: int, seconds: float) -> ScalingPoint:
    """Start ``workers`` threads; each builds its operation (e.g. its own API client and
    database connection), then all start together.

    Raises:
        RuntimeError: a worker failed (its error is quoted).
    """
    from django.db import connections

    barrier = threading.Barrier(workers + 1)
    results: list[WorkerRun] = []
    errors: list[BaseException] = []

    def main(worker: int) -> None:
        try:
            results.append(_loop(worker, make_op, seconds, barrier))
        except BaseException as exc:
            barrier.abort()
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connections only

    threads = [threading.Thread(target=main, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: see below
        barrier.wait(timeout=120)
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a worker failed: {errors[0]!r}")
    return ScalingPoint(workers, sorted(results, key=lambda r: r.worker))


RUNNERS = {"processes": run_processes, "threads": run_threads}


def run_scaling(
    scaling: Scaling,
    make_op: OpFactory,
    *,
    workers: Sequence[int],
    seconds: float,
    log: Callable[[str], None],
) -> Scaling:
    """Fill ``scaling.points`` with one run per worker count, in the order given."""
    runner = RUNNERS[scaling.mode]
    for n in workers:
        point = runner(make_op, n, seconds)
        scaling.points.append(point)
        log(
            f"  {scaling.name:22} {n} worker(s): {point.throughput:10.1f} ops/s "
            f"(efficiency {scaling.efficiency(point):.2f}, {point.cpu_share:.2f} CPUs used)"
        )
    return scaling
