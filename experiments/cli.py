"""Command line of the experiments harness (``experiments/run_experiments.py``)."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from experiments import tee as tee_module

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
DEFAULT_SCALING = "verify:processes,attest:threads"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _workers(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are at least 1")
    return sorted(set(counts))


def _scaling(text: str) -> list[tuple[str, str]]:
    from experiments.scaling import RUNNERS
    from experiments.workloads import SCALING_WORKLOADS

    plan = []
    for part in text.split(","):
        workload, _, mode = part.strip().partition(":")
        if workload not in SCALING_WORKLOADS or mode not in RUNNERS:
            raise argparse.ArgumentTypeError(
                f"{part!r}: use WORKLOAD:MODE with WORKLOAD in {sorted(SCALING_WORKLOADS)} "
                f"and MODE in {sorted(RUNNERS)}"
            )
        plan.append((workload, mode))
    return plan


def parser() -> argparse.ArgumentParser:
    """The argument parser (documented in docs/experiments.md)."""
    p = argparse.ArgumentParser(
        prog="run_experiments.py",
        description="Measure key generation, attestation, registration, receipt signatures "
        "and throughput scaling; write CSV, LaTeX, PNG and a report.",
    )
    p.add_argument("--iterations", type=_positive, default=1000, help="latency samples each")
    p.add_argument("--duration", type=_seconds, default=60.0, help="seconds of each throughput run")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default experiments/results/<UTC timestamp>/)",
    )
    p.add_argument("--batch", type=_positive, default=64, help="receipts per batch/aggregate")
    p.add_argument(
        "--workers", type=_workers, default=[1, 2, 4, 8], help="worker counts (default 1,2,4,8)"
    )
    p.add_argument(
        "--scaling",
        type=_scaling,
        default=_scaling(DEFAULT_SCALING),
        help=f"throughput runs, WORKLOAD:MODE,... (default {DEFAULT_SCALING})",
    )
    p.add_argument(
        "--backend",
        choices=("blst", "py_ecc"),
        default="blst",
        help="BLS backend (PBTS_BLS_BACKEND)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run everything and write the results; returns the exit status (0)."""
    args = parser().parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    out = args.out or RESULTS / started.strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, flush=True)

    from experiments.output import load_average

    load_before = load_average()
    status = tee_module.detect()
    log(status.description)
    os.environ["PBTS_BLS_BACKEND"] = args.backend

    from experiments.django_site import django_start

    work = django_start()
    log(f"site: temporary SQLite database {work.database} (removed after the run)")
    try:
        return _run(args, out, status, started, load_before, log)
    finally:
        work.close()


def _run(
    args: argparse.Namespace,
    out: Path,
    status: tee_module.TeeStatus,
    started: datetime.datetime,
    load_before: str,
    log: Callable[[str], None],
) -> int:
    """Measure with Django set up (:func:`main` owns the temporary database)."""
    from experiments import output, plots
    from experiments.django_site import fixtures_create
    from experiments.scaling import Scaling, run_scaling
    from experiments.workloads import SCALING_WORKLOADS, op_factory, run_latency, signed_set

    fixtures = fixtures_create()
    signed = signed_set(fixtures, args.batch)
    log(f"latency: {args.iterations} samples each")
    measurements = run_latency(
        fixtures=fixtures, signed=signed, tee=status, iterations=args.iterations, log=log
    )
    log(f"throughput: {args.duration:g} s per run, workers {args.workers}")
    scalings = []
    for workload, mode in args.scaling:
        scaling = Scaling(workload, mode, SCALING_WORKLOADS[workload])
        factory = op_factory(workload, fixtures=fixtures, signed=signed)
        scalings.append(
            run_scaling(scaling, factory, workers=args.workers, seconds=args.duration, log=log)
        )

    settings_line = (
        f"iterations {args.iterations}, duration {args.duration:g} s, batch {args.batch}, "
        f"workers {args.workers}, BLS backend {args.backend}, database: a temporary SQLite "
        "file (removed after the run), requests through django.test.Client"
    )
    command = shlex.join(["experiments/run_experiments.py", *(sys.argv[1:])])
    files = output.write_csvs(out, measurements, scalings)
    files.append(
        output.write_latex(
            out,
            measurements,
            scalings,
            caption=f"{args.iterations} samples each; {status.description}.",
        )
    )
    files.append(
        output.write_report(
            out,
            measurements,
            scalings,
            tee=status,
            settings_line=settings_line,
            command=command,
            started=started,
            load_before=load_before,
        )
    )
    files += [plots.plot_latency(out, m) for m in measurements if m.samples]
    files.append(plots.plot_latency_overview(out, measurements))
    files.append(plots.plot_scaling(out, scalings, cores=os.cpu_count() or 1))
    log(f"{len(files)} files written to {out}")
    return 0
