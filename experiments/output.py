"""The files a run writes: per-measurement CSVs, summary CSVs, a LaTeX table and a text
report. Figures are formatted with 3 significant decimals; missing (TEE) values are "n/a"."""

from __future__ import annotations

import csv
import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from experiments.scaling import Scaling
from experiments.stats import Summary, summarize
from experiments.tee import TeeStatus
from experiments.workloads import Measurement

SUMMARY_HEADER = ["measurement", "n", "mean", "median", "p95", "p99", "stdev", "unit", "what"]
SAMPLE_HEADER = ["measurement", "iteration", "latency_ms"]
SCALING_HEADER = [
    "workload",
    "mode",
    "workers",
    "operations",
    "seconds",
    "throughput_per_s",
    "efficiency",
    "cpus_used",
    "ops_per_cpu_s",
]
WORKER_HEADER = [
    "workload",
    "mode",
    "workers",
    "worker",
    "operations",
    "seconds",
    "ops_per_s",
    "cpu_seconds",
]
LIBRARIES = (
    "Django",
    "djangorestframework",
    "pyblst",
    "py_ecc",
    "fastbencode",
    "matplotlib",
    "dstack-sdk",
)
NA = "n/a"


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _figures(summary: Summary | None) -> list[str]:
    if summary is None:
        return ["0", NA, NA, NA, NA, NA]
    values = (summary.mean, summary.median, summary.p95, summary.p99, summary.stdev)
    return [str(summary.n), *(f"{v:.3f}" for v in values)]


def write_csvs(
    out: Path, measurements: Sequence[Measurement], scalings: Sequence[Scaling]
) -> list[Path]:
    """``<name>.csv`` per measurement (one row per sample; header only for a measurement that
    did not run), ``summary.csv`` (one row per measurement), ``scaling_<workload>_<mode>.csv``
    (one row per worker of each run) and ``scaling.csv`` (one row per worker count)."""
    paths = []
    for m in measurements:
        rows = [(m.name, i, f"{v:.6f}") for i, v in enumerate(m.samples)]
        paths.append(_write_csv(out / f"{m.name}.csv", SAMPLE_HEADER, rows))
    summary = [[m.name, *_figures(summarize(m.samples)), m.unit, m.what] for m in measurements]
    paths.append(_write_csv(out / "summary.csv", SUMMARY_HEADER, summary))
    curve = []
    for s in scalings:
        workers = []
        for p in s.points:
            curve.append(
                [
                    s.workload,
                    s.mode,
                    p.workers,
                    p.operations,
                    f"{p.seconds:.3f}",
                    f"{p.throughput:.3f}",
                    f"{s.efficiency(p):.3f}",
                    f"{p.cpu_share:.3f}",
                    f"{p.per_cpu_second:.3f}",
                ]
            )
            workers += [
                [
                    s.workload,
                    s.mode,
                    p.workers,
                    r.worker,
                    r.operations,
                    f"{r.seconds:.3f}",
                    f"{r.operations / r.seconds:.3f}",
                    f"{r.cpu_seconds:.3f}",
                ]
                for r in p.runs
            ]
        paths.append(_write_csv(out / f"scaling_{s.name}.csv", WORKER_HEADER, workers))
    paths.append(_write_csv(out / "scaling.csv", SCALING_HEADER, curve))
    return paths


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    special = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(special.get(c, c) for c in text)


def write_latex(
    out: Path,
    measurements: Sequence[Measurement],
    scalings: Sequence[Scaling],
    *,
    caption: str,
) -> Path:
    """``results.tex``: two booktabs tables (``\\usepackage{booktabs}``), the latencies in
    milliseconds and the throughput scaling."""
    lines = [
        "% PBTS experiments (experiments/run_experiments.py). Needs \\usepackage{booktabs}.",
        "\\begin{table}[ht]",
        "\\centering",
        f"\\caption{{Latency in milliseconds. {latex_escape(caption)}}}",
        "\\label{tab:pbts-latency}",
        "\\begin{tabular}{lrrrrrr}",
        "\\toprule",
        "Measurement & $n$ & Mean & Median & p95 & p99 & Std.\\ dev. \\\\",
        "\\midrule",
    ]
    for m in measurements:
        cells = [latex_escape(m.name), *_figures(summarize(m.samples))]
        lines.append(" & ".join(cells) + " \\\\")
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
        "",
        "\\begin{table}[ht]",
        "\\centering",
        "\\caption{Throughput scaling; efficiency is "
        "$\\mathit{throughput}_n / (n \\cdot \\mathit{throughput}_1)$.}",
        "\\label{tab:pbts-scaling}",
        "\\begin{tabular}{llrrrr}",
        "\\toprule",
        "Workload & Mode & Workers & Ops/s & Efficiency & CPUs used \\\\",
        "\\midrule",
    ]
    for s in scalings:
        for p in s.points:
            cells = [
                latex_escape(s.workload),
                s.mode,
                str(p.workers),
                f"{p.throughput:.1f}",
                f"{s.efficiency(p):.2f}",
                f"{p.cpu_share:.2f}",
            ]
            lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    path = out / "results.tex"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The system's 1, 5 and 15 minute load averages, or "unknown"."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def git_commit() -> str:
    """The checkout's commit (``git describe --always --dirty``), or "unknown"."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def cpu_model() -> str:
    """The CPU model, from ``bench.lib.machine.cpu_model`` (one helper for every figure of the
    project), or ``platform.processor()`` where bench is not importable."""
    try:
        from bench.lib.machine import cpu_model as bench_cpu_model
    except ImportError:
        return platform.processor() or "unknown CPU"
    return bench_cpu_model()


def write_report(
    out: Path,
    measurements: Sequence[Measurement],
    scalings: Sequence[Scaling],
    *,
    tee: TeeStatus,
    settings_line: str,
    command: str,
    started: datetime.datetime,
    load_before: str,
) -> Path:
    """``report.txt``: the machine, its load (other work on the box skews every figure),
    versions, the commit, TEE status, settings, and every figure."""
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    lines = [
        "PBTS experiments",
        f"started:   {started.isoformat(timespec='seconds')}",
        f"command:   {command}",
        f"machine:   {platform.node()} ({platform.platform()})",
        f"CPU:       {cpu_model()}; {cores} logical CPU(s), {usable} usable by this process",
        f"load:      {load_before} (1, 5, 15 min) at the start; {load_average()} at the end",
        f"Python:    {sys.version.split()[0]} ({platform.python_implementation()})",
        f"commit:    {git_commit()}",
        "libraries: " + ", ".join(f"{n} {_version(n)}" for n in LIBRARIES),
        f"TEE:       {tee.description}",
        f"settings:  {settings_line}",
        "",
        "Latency (ms)",
        f"{'measurement':26} {'n':>6} {'mean':>10} {'median':>10} {'p95':>10} {'p99':>10}"
        f" {'stdev':>10}  what",
    ]
    for m in measurements:
        n, *figures = _figures(summarize(m.samples))
        cells = " ".join(f"{f:>10}" for f in figures)
        lines.append(f"{m.name:26} {n:>6} {cells}  {m.what}")
    lines += ["", "Throughput scaling (efficiency = throughput_n / (n * throughput_1))"]
    for s in scalings:
        lines.append(f"{s.name} -- {s.what}")
        for p in s.points:
            lines.append(
                f"  {p.workers} worker(s): {p.operations:8d} ops in {p.seconds:7.2f} s = "
                f"{p.throughput:10.1f} ops/s, efficiency {s.efficiency(p):.2f}, "
                f"{p.cpu_share:.2f} CPUs used, {p.per_cpu_second:.1f} ops per CPU second"
            )
    lines += [
        "",
        f"With {usable} usable CPU(s), n workers can at best reach min(n, {usable})/n "
        "efficiency; threads of CPU-bound Python code share one interpreter lock. "
        "CPUs used: the workers' CPU seconds over the wall seconds (the parent and other "
        "programs on the box are not counted).",
        "",
    ]
    path = out / "report.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
