"""PNG figures of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.scaling import Scaling
from experiments.workloads import Measurement


def plot_latency(out: Path, m: Measurement) -> Path:
    """``latency_<name>.png``: the samples' histogram beside their box plot (ms)."""
    fig, (hist, box) = plt.subplots(
        1, 2, figsize=(8, 3.2), gridspec_kw={"width_ratios": [3, 1]}, layout="constrained"
    )
    hist.hist(m.samples, bins=min(50, max(5, len(m.samples) // 10)), color="#4472c4")
    hist.set_xlabel("latency (ms)")
    hist.set_ylabel("samples")
    hist.set_title(f"{m.name}: {m.what} (n={len(m.samples)})", fontsize=9)
    box.boxplot(m.samples, whis=(1, 99), showfliers=True)
    box.set_xticks([])
    box.set_ylabel("ms (whiskers: p1, p99)")
    path = out / f"latency_{m.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency_overview(out: Path, measurements: Sequence[Measurement]) -> Path:
    """``latency_overview.png``: every measurement's box plot on one log axis (ms)."""
    ran = [m for m in measurements if m.samples]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ran) + 1.5), layout="constrained")
    ax.boxplot([m.samples for m in ran], vert=False, whis=(1, 99), showfliers=False)
    ax.set_yticks(range(1, len(ran) + 1), [m.name for m in ran])
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale; whiskers p1-p99)")
    ax.invert_yaxis()
    path = out / "latency_overview.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scaling(out: Path, scalings: Sequence[Scaling], *, cores: int) -> Path:
    """``scaling.png``: throughput against workers (with the ideal linear line from the
    fewest workers) and scaling efficiency."""
    fig, (thr, eff) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for s in scalings:
        workers = [p.workers for p in s.points]
        base = min(s.points, key=lambda p: p.workers)
        (line,) = thr.plot(workers, [p.throughput for p in s.points], "o-", label=s.name)
        ideal = [base.throughput / base.workers * n for n in workers]
        thr.plot(workers, ideal, ":", color=line.get_color(), alpha=0.6)
        eff.plot(workers, [s.efficiency(p) for p in s.points], "o-", label=s.name)
    ticks = sorted({p.workers for s in scalings for p in s.points})
    for ax in (thr, eff):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
    thr.axvline(cores, color="grey", lw=0.8, ls="--")
    thr.set_xlabel("workers (dotted: linear; dashed: CPUs)")
    thr.set_ylabel("operations per second")
    thr.legend(fontsize=8)
    eff.axvline(cores, color="grey", lw=0.8, ls="--")
    eff.set_xlabel("workers")
    eff.set_ylabel("efficiency  T_n / (n T_1)")
    eff.set_ylim(0, 1.2)
    eff.legend(fontsize=8)
    path = out / "scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
