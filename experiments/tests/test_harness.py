"""The harness end to end, without a TEE: a short run writes every file, each parsed here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from experiments import cli
from experiments.output import SAMPLE_HEADER, SCALING_HEADER, SUMMARY_HEADER, WORKER_HEADER
from experiments.tests.conftest import BASELINE_ITERATIONS
from experiments.tests.harness import LATENCY, PNG_MAGIC, TEE_ROWS, read_csv

ITERATIONS = BASELINE_ITERATIONS
WORKERS = [1, 2, 4, 8]
SCALINGS = [("verify", "processes"), ("attest", "threads")]


@pytest.fixture
def run(runs):
    """(output folder, stdout) of the baseline run (conftest.py)."""
    return runs.baseline.out, runs.baseline.stdout()


def test_a_run_without_tee_says_so_on_stdout_and_in_the_report(run):
    out, stdout = run
    assert stdout.splitlines()[0].startswith("no TEE: baseline only")
    report = (out / "report.txt").read_text()
    assert "TEE:       no TEE: baseline only (no dstack socket at" in report
    assert "CPU:" in report and "logical CPU(s)" in report
    assert "pyblst" in report and "Django" in report and "Python:" in report
    assert "temporary SQLite file" in report


def test_the_site_ran_on_a_temporary_sqlite_file_that_is_gone(run):
    _, stdout = run
    line = next(line for line in stdout.splitlines() if line.startswith("site: "))
    path = Path(line.split("database ", 1)[1].split(" (removed", 1)[0])
    assert path.name == "experiments.sqlite3" and path.parent.name.startswith("pbts-experiments-")
    assert not path.parent.exists()


def test_every_latency_measurement_has_a_sample_csv(run):
    out, _ = run
    for name in LATENCY:
        header, rows = read_csv(out / f"{name}.csv")
        assert header == SAMPLE_HEADER, name
        expected = 0 if name in TEE_ROWS else ITERATIONS
        assert len(rows) == expected, name
        assert [int(r["iteration"]) for r in rows] == list(range(expected))
        assert all(float(r["latency_ms"]) > 0 for r in rows), name


def test_the_summary_has_every_measurement_with_tee_rows_marked_na(run):
    out, _ = run
    header, rows = read_csv(out / "summary.csv")
    assert header == SUMMARY_HEADER
    by_name = {row["measurement"]: row for row in rows}
    assert list(by_name) == LATENCY
    for name, row in by_name.items():
        assert row["unit"] == "ms"
        if name in TEE_ROWS:
            assert row["n"] == "0" and row["mean"] == row["p99"] == "n/a"
            continue
        mean, median, p95, p99, stdev = (
            float(row[k]) for k in ("mean", "median", "p95", "p99", "stdev")
        )
        assert int(row["n"]) == ITERATIONS
        assert 0 < median <= p95 <= p99 and mean > 0 and stdev >= 0, name


def test_scaling_covers_1_2_4_8_workers_with_efficiency(run):
    out, _ = run
    header, rows = read_csv(out / "scaling.csv")
    assert header == SCALING_HEADER
    assert [(r["workload"], r["mode"], int(r["workers"])) for r in rows] == [
        (w, m, n) for w, m in SCALINGS for n in WORKERS
    ]
    for row in rows:
        throughput = float(row["throughput_per_s"])
        assert throughput > 0 and int(row["operations"]) > 0
        # CPU seconds of the workers over wall seconds: some, and never more than the box has.
        assert 0 < float(row["cpus_used"]) <= (os.cpu_count() or 1) + 0.1
        # Operations per CPU second: the throughput over the CPUs the workers used.
        per_cpu = float(row["ops_per_cpu_s"])
        assert per_cpu == pytest.approx(throughput / float(row["cpus_used"]), rel=0.01)
        assert float(row["seconds"]) >= 2.0
        if row["workers"] == "1":
            assert row["efficiency"] == "1.000"
        first = next(r for r in rows if r["workload"] == row["workload"] and r["workers"] == "1")
        expected = throughput / (int(row["workers"]) * float(first["throughput_per_s"]))
        assert float(row["efficiency"]) == pytest.approx(expected, abs=0.002)
    for workload, mode in SCALINGS:
        header, workers = read_csv(out / f"scaling_{workload}_{mode}.csv")
        assert header == WORKER_HEADER
        assert len(workers) == sum(WORKERS)  # one row per worker of each run
        eight = next(r for r in rows if r["workload"] == workload and r["workers"] == "8")
        total = sum(int(w["operations"]) for w in workers if w["workers"] == "8")
        assert total == int(eight["operations"])
        assert all(0 < float(w["cpu_seconds"]) <= float(w["seconds"]) + 0.1 for w in workers)


def test_the_latex_table_uses_booktabs_and_names_every_measurement(run):
    out, _ = run
    tex = (out / "results.tex").read_text()
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 2, rule
    for name in LATENCY:
        assert name.replace("_", "\\_") + " & " in tex, name
    assert "keygen\\_tee & 0 & n/a" in tex
    for workload, mode in SCALINGS:
        for n in WORKERS:
            assert f"{workload} & {mode} & {n} & " in tex


def test_the_plots_are_real_pngs(run):
    out, _ = run
    names = [f"latency_{n}.png" for n in LATENCY if n not in TEE_ROWS]
    names += ["latency_overview.png", "scaling.png"]
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name
    assert not (out / "latency_keygen_tee.png").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--iterations", "0"],
        ["--duration", "0"],
        ["--workers", "0,2"],
        ["--workers", "two"],
        ["--scaling", "verify:fibers"],
        ["--scaling", "mine:processes"],
    ],
)
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parser().parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_default_arguments_are_the_original_papers_run_scaled_to_1_2_4_8():
    args = cli.parser().parse_args([])
    assert (args.iterations, args.duration, args.workers) == (1000, 60.0, WORKERS)
    assert args.scaling == SCALINGS and args.out is None
