"""Reliability bench (issue 14): API fuzzing, worker kills, service restarts and a soak.

Usage (from the project root, after ``make install`` and ``npm ci``)::

    .venv/bin/python bench/reliability.py              # everything (~20 min), writes the doc
    .venv/bin/python bench/reliability.py --schema     # schemathesis only (member and staff)
    .venv/bin/python bench/reliability.py --faults     # worker kills and service restarts only
    .venv/bin/python bench/reliability.py --soak --minutes 10 --rate 300

Every part runs on PRIVATE servers it starts and stops itself (``tests/reliability/kit.py``:
``redis-server`` and a PostgreSQL cluster of its own on free loopback ports, anvil for the
chain): the machine's shared PostgreSQL and Redis are never restarted or flushed. The pytest
run of ``--faults`` only pings them (the suite's session check) and uses its own key prefix.

1. ``--schema``: gunicorn (2 workers) serving a seeded site, its contracts on anvil; the ``st``
   command line of schemathesis against ``/api/schema/`` with a member's token, then a
   moderator's: the gate (``not_a_server_error``, ``response_schema_conformance``) with
   ``--examples`` cases per operation (coverage and fuzzing phases; the token reset last, on
   its own), then, for information, every check of schemathesis with 10 cases per operation
   (what it reports there is conformance detail, listed by check, not a failure of the gate).
2. ``--faults``: the suite's kill and restart tests (``tests/reliability/test_worker_kill.py``,
   ``test_restarts.py``) with their figures recorded (``RELIABILITY_FIGURES``), then one
   scenario the suite does not gate on: Redis restarted WITHOUT persistence (no append-only
   file, no snapshot) under load, to measure what such a deployment loses.
3. ``--soak``: trackerd under a steady load (``--rate`` announces/s, one keep-alive
   connection) for ``--minutes``, 500 (member, torrent) pairs with two peer slots each, peers
   leaving (``stopped``) with chance 0.05 per announce and coming back with a new peer_id;
   trackerd's RSS and Redis's used memory sampled every 5 s, the first fifth of the run
   counted as warm-up; at the end the database's ledgers and history are compared with the
   bytes the answered announces credited.

The figures are printed; a full run (all three parts, ``--minutes`` >= 10, default examples)
rewrites the *Figures* section of ``docs/reliability.md`` (between its markers; the rest of
the file is hand-written and kept), ``--no-doc`` skips that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if not __package__:  # run as a file: import from the project root (bench/ scripts would shadow)
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.lib.machine import cpu_model
from tests.reliability.fuzz import GATE_CHECKS, failures, fuzz_site, run_schemathesis
from tests.reliability.kit import PYTHON, ROOT, PrivateRedis, pg_bin, wait_until
from tests.reliability.soak import SoakResult, soak
from tests.reliability.world import Load, PrivateSite, Swarms, migrated_postgres

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
FAULT_TESTS = ["tests/reliability/test_worker_kill.py", "tests/reliability/test_restarts.py"]
DEFAULT_EXAMPLES = 25
INFO_EXAMPLES = 10


def _version(cmd: list[str], pattern: str = r"(\d+[\d.]*)") -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except OSError:
        return "?"
    found = re.search(pattern, out)
    return found.group(1) if found else "?"


def machine() -> str:
    """The machine and the versions of what ran, in one line."""
    cpu = cpu_model()
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    st = _version([str(Path(PYTHON).parent / "st"), "--version"])
    redis_version = _version(["redis-server", "--version"], r"v=(\S+)")
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB RAM, Linux "
        f"{platform.release()}; Python {platform.python_version()}, PostgreSQL "
        f"{_version([pg_bin('postgres'), '--version'])}, Redis "
        f"{redis_version}, schemathesis {st}"
    )


# --- 1. API fuzzing ------------------------------------------------------------------------


def run_schema(workdir: Path, examples: int) -> dict:
    """Fuzz as a member and as staff; per role the gate's figures and failures, and the
    every-check run's findings by check."""
    out: dict = {"examples": examples, "roles": {}}
    pg, redis = migrated_postgres(), PrivateRedis().start()
    try:
        with fuzz_site(pg, redis, workdir) as site:
            for role in ("member", "staff"):
                print(f"schemathesis as {role}: gate, {examples} examples ...", flush=True)
                gate = run_schemathesis(site, role, workdir / f"{role}.json", max_examples=examples)
                print(f"schemathesis as {role}: every check, {INFO_EXAMPLES} examples ...")
                info = run_schemathesis(
                    site, role, workdir / f"{role}-all.json", max_examples=INFO_EXAMPLES,
                    checks="all",
                )  # fmt: skip
                reset = run_schemathesis(
                    site, role, workdir / f"{role}-reset.json", max_examples=examples,
                    token_reset=True,
                )  # fmt: skip
                out["roles"][role] = {
                    "operations": gate["operations"]["tested"] + reset["operations"]["tested"],
                    "cases": gate["test_cases"]["generated"] + reset["test_cases"]["generated"],
                    "seconds": round(gate["running_time"] + reset["running_time"]),
                    "failures": failures(gate) + failures(reset),
                    "info_cases": info["test_cases"]["generated"],
                    "info": [
                        {
                            "code": f.get("code", ""),
                            "title": f.get("title", ""),
                            "count": f.get("count", 0),
                            "operations": len(f.get("operations", [])),
                        }
                        for f in info.get("failures", [])
                    ],
                }
                print(json.dumps(out["roles"][role], indent=1), flush=True)
    finally:
        redis.close()
        pg.close()
    return out


# --- 2. kills and restarts -----------------------------------------------------------------


def run_fault_tests(workdir: Path) -> dict:
    """The suite's kill and restart tests with their figures; exit code and seconds."""
    figures = workdir / "figures.jsonl"
    env = dict(os.environ, RELIABILITY_FIGURES=str(figures))
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pbts_reliability")
    started = time.monotonic()
    cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAULT_TESTS]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    print(result.stdout[-3000:], flush=True)
    records = {}
    if figures.exists():
        for line in figures.read_text().splitlines():
            item = json.loads(line)
            records[item.pop("name")] = item
    return {
        "exit": result.returncode,
        "seconds": round(time.monotonic() - started),
        "summary": result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "",
        "figures": records,
    }


def run_redis_wipe(workdir: Path) -> dict:
    """Redis WITHOUT persistence restarted under load: what the answered announces credited,
    what reached the database, and the error replies."""
    pg, redis = migrated_postgres(), PrivateRedis(appendonly=False).start()
    site = PrivateSite(pg, redis, name="wipe", log_dir=workdir, PBTS_FLUSH_SECONDS="1")
    try:
        seed = site.sitectl("seed-tracker", members=20, torrents=5)
        site.worker(beat=True)
        trackerd, port = site.trackerd()
        load = Load(Swarms(seed, pairs=60, rng=random.Random(7)), port, rate=250).start()
        time.sleep(4)
        load.mark("down")
        redis.stop()
        time.sleep(3)
        redis.start()
        load.mark("up")
        time.sleep(6)
        counts = load.stop()
        trackerd.stop()
        wait_until(site.stats_settled, timeout=60, what="statistics flushed", every=0.5)
        sent = sum(u + d for u, d in load.swarms.book.ledger.values())
        landed = sum(u + d for u, d in site.ledgers().values())
        return {
            "announces": counts.sent,
            "bad": counts.bad,
            "while_down": load.marks["up"][0] - load.marks["down"][0],
            "sent_bytes": sent,
            "landed_bytes": landed,
            "lost_bytes": sent - landed,
            "over_bytes": max(0, landed - sent),
        }
    finally:
        site.close()
        redis.close()
        pg.close()


# --- 3. soak ---------------------------------------------------------------------------------


def run_soak(workdir: Path, minutes: float, rate: float) -> SoakResult:
    """The soak on private servers, progress printed every 5 s."""
    pg, redis = migrated_postgres(), PrivateRedis().start()
    try:
        return soak(
            pg, redis, workdir, seconds=minutes * 60, rate=rate, sample_every=5.0,
            progress=lambda line: print(line, flush=True),
        )  # fmt: skip
    finally:
        redis.close()
        pg.close()


def soak_figures(result: SoakResult) -> dict:
    """The soak's figures as a dict (KiB, seconds, announces)."""
    return {
        "seconds": result.seconds,
        "rate": result.rate,
        "sent": result.sent,
        "ok": result.ok,
        "joins": result.joins,
        "leaves": result.leaves,
        "bad": result.bad,
        "bad_detail": result.bad_detail,
        "slowest_s": round(result.slowest_s, 3),
        "warmup_s": result.warmup_s,
        "rss_start_kib": result.samples[0][1],
        "rss_warm_kib": result.rss_at_warmup_kib,
        "rss_end_kib": result.rss_end_kib,
        "rss_max_kib": result.rss_max_kib,
        "slope_kib_min": round(result.slope_kib_per_min, 1),
        "redis_warm_kib": next(s[2] for s in result.samples if s[0] >= result.warmup_s),
        "redis_end_kib": result.samples[-1][2],
        "flushed_batches": result.flushed_batches,
        "credited_bytes": result.credited_bytes,
        "differences": result.differences[:20],
        "samples": result.samples,
    }


# --- the doc ---------------------------------------------------------------------------------


def _schema_lines(schema: dict) -> list[str]:
    lines = [
        f"Gate (`{GATE_CHECKS}`), {schema['examples']} examples per operation in the fuzzing "
        "phase plus the coverage phase's boundary cases, seed 14:",
        "",
        "| role | operations | test cases | server errors (5xx) | schema violations | time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for role, r in schema["roles"].items():
        errors = sum("Server error" in f for f in r["failures"])
        lines.append(
            f"| {role} | {r['operations']} | {r['cases']:,} | {errors} | "
            f"{len(r['failures']) - errors} | {r['seconds']} s |"
        )
    lines += [
        "",
        f"Every check of schemathesis, {INFO_EXAMPLES} examples per operation (information, "
        "not the gate; see *What the fuzzing reports beyond the gate* above):",
        "",
        "| role | test cases | check | failures | operations |",
        "|---|---:|---|---:|---:|",
    ]
    for role, r in schema["roles"].items():
        for f in r["info"] or [{"code": "-", "title": "none", "count": 0, "operations": 0}]:
            lines.append(
                f"| {role} | {r['info_cases']:,} | {f['code']} {f['title']} | {f['count']} | "
                f"{f['operations']} |"
            )
    return lines


def _fault_lines(faults: dict, wipe: dict) -> list[str]:
    f = faults["figures"]
    kf, kv, kp = f.get("kill-flush", {}), f.get("kill-verify", {}), f.get("kill-push", {})
    rr, rp = f.get("restart-redis", {}), f.get("restart-postgres", {})
    ok = "equal, nothing lost, nothing twice" if faults["exit"] == 0 else "FAILED"
    lines = [
        f"`pytest {' '.join(FAULT_TESTS)}`: {faults['summary']} (exit {faults['exit']}).",
        "",
        "| scenario | sent | at the kill / restart | after the restart | database vs sent |",
        "|---|---|---|---|---|",
    ]
    if kf:
        lines.append(
            f"| SIGKILL during a statistics flush (inside the transaction, then after the "
            f"commit) | {kf['announces']:,} announces, {kf['credited_bytes']:,} bytes credited "
            f"to {kf['members']} members, {kf['history_rows']} history rows | nothing committed "
            f"/ committed, batch left in Redis; the flush lock released "
            f"{kf['lock_left_s'][0]} s after the kill | {kf['batches_applied']} batches "
            f"applied | {ok} |"
        )
    if kv:
        lines.append(
            f"| SIGKILL during receipt verification (batch 2's transaction) | "
            f"{kv['receipts']} receipts ({kv['credited_bytes']:,} bytes) | "
            f"{kv['verified_at_kill']} verified (batch 1), the rest queued | "
            f"{kv['verified_at_end']} verified once | {ok} |"
        )
    if kp:
        lines.append(
            f"| SIGKILL during a chain push (after a broadcast, then before one) | "
            f"{kp['members']} members, batches of {kp['batch_size']}, twice | sender lease left "
            f"for {kp['lease_left_s'][0]} s | {kp['transactions']} transactions for "
            f"{kp['batches']} batches | on-chain totals {ok} |"
        )
    if rr:
        lines.append(
            f"| Redis restarted (SIGTERM, append-only file) under {rr['announces']:,} announces "
            f"at 250/s | {rr['credited_bytes']:,} bytes credited | down {rr['down_s']} s, "
            f"{rr['while_down']} announces answered meanwhile, {rr['bad']} error replies, "
            f"slowest {rr['slowest_s'] * 1000:.0f} ms | {rr['batches_before']} batches "
            f"before, {rr['batches_total']} in all | {ok} |"
        )
    if rp:
        lines.append(
            f"| PostgreSQL restarted (fast shutdown) during a flush | {rp['announces']:,} "
            f"announces, {rp['credited_bytes']:,} bytes | the flush's transaction rolled back, "
            f"{rp['while_down']} announces answered while down, {rp['bad']} error replies | "
            f"{rp['batches_applied']} batches applied by the same worker | {ok} |"
        )
    if wipe:
        lines += [
            "",
            "Bench only: Redis restarted WITHOUT persistence under the same load: "
            f"{wipe['announces']:,} announces ({wipe['while_down']} while down), "
            f"{wipe['bad']} error replies; {wipe['sent_bytes']:,} bytes credited by the "
            f"answered announces, {wipe['landed_bytes']:,} in the database: "
            f"{wipe['lost_bytes']:,} bytes lost "
            f"({100 * wipe['lost_bytes'] / max(wipe['sent_bytes'], 1):.1f} %), "
            f"{wipe['over_bytes']} counted twice.",
        ]
    return lines


def _soak_lines(s: dict) -> list[str]:
    minutes = s["seconds"] / 60
    lines = [
        f"{minutes:.0f} min at {s['rate']:.0f} announces/s: {s['sent']:,} announces, "
        f"{s['joins']:,} peers joined (`started`, a new peer_id each), {s['leaves']:,} left "
        f"(`stopped`); {s['bad']} error replies; slowest reply {s['slowest_s'] * 1000:.0f} ms.",
        "",
        "| trackerd RSS | KiB |",
        "|---|---:|",
        f"| at start | {s['rss_start_kib']:,} |",
        f"| after the warm-up ({s['warmup_s']:.0f} s) | {s['rss_warm_kib']:,} |",
        f"| largest after the warm-up | {s['rss_max_kib']:,} |",
        f"| at the end | {s['rss_end_kib']:,} |",
        f"| growth after the warm-up | {s['rss_max_kib'] - s['rss_warm_kib']:,} |",
        f"| least-squares slope after the warm-up | {s['slope_kib_min']:,} KiB/min |",
        "",
        f"Redis used memory: {s['redis_warm_kib']:,} KiB after the warm-up, "
        f"{s['redis_end_kib']:,} KiB at the end (the replication log keeps 120 s).",
        "",
        f"Statistics: {s['credited_bytes']:,} bytes credited by the answered announces, "
        f"{s['flushed_batches']} flushes; the database's ledgers and history "
        + ("equal them exactly." if not s["differences"] else f"DIFFER: {s['differences']}"),
        "",
        "RSS every minute (seconds: KiB): "
        + "; ".join(f"{t:.0f} s: {r:,}" for t, r, _ in s["samples"] if round(t) % 60 == 0),
    ]
    return lines


def write_doc(report: dict) -> None:
    """Replace the figures section of docs/reliability.md."""
    lines = [
        BEGIN,
        "",
        f"Run of `bench/reliability.py` on {report['date']} ({report['minutes']:.0f} min); "
        f"machine: {report['machine']}.",
        "",
        "### API fuzzing",
        "",
        *_schema_lines(report["schema"]),
        "",
        "### Worker kills and service restarts",
        "",
        *_fault_lines(report["faults"], report["wipe"]),
        "",
        "### Soak",
        "",
        *_soak_lines(report["soak"]),
        "",
        END,
    ]
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + "\n".join(lines) + tail)


def main(argv: list[str] | None = None) -> int:
    """Run the parts the command line asks for, print the figures, write the doc."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", action="store_true", help="API fuzzing only")
    parser.add_argument("--faults", action="store_true", help="kills and restarts only")
    parser.add_argument("--soak", action="store_true", help="the soak only")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (10)")
    parser.add_argument("--rate", type=float, default=300.0, help="soak announces/s (300)")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="per operation")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    everything = not (args.schema or args.faults or args.soak)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    started = time.monotonic()
    report: dict = {"date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "machine": machine()}
    print(report["machine"], flush=True)
    with tempfile.TemporaryDirectory(prefix="pbts-reliability-") as tmp:
        workdir = Path(tmp)
        if everything or args.schema:
            report["schema"] = run_schema(workdir, args.examples)
        if everything or args.faults:
            report["faults"] = run_fault_tests(workdir)
            print(json.dumps(report["faults"]["figures"], indent=1), flush=True)
            report["wipe"] = run_redis_wipe(workdir)
            print("Redis without persistence:", json.dumps(report["wipe"]), flush=True)
        if everything or args.soak:
            result = run_soak(workdir, args.minutes, args.rate)
            report["soak"] = soak_figures(result)
            print(json.dumps({k: v for k, v in report["soak"].items() if k != "samples"}))
    report["minutes"] = (time.monotonic() - started) / 60
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    full = everything and args.minutes >= 10 and args.examples >= DEFAULT_EXAMPLES
    if full and not args.no_doc:
        write_doc(report)
        print(f"Figures written to {DOC.relative_to(ROOT)}")
    failed = []
    if "schema" in report:
        failed += [f for r in report["schema"]["roles"].values() for f in r["failures"]]
    if "faults" in report and report["faults"]["exit"] != 0:
        failed.append("fault tests failed")
    if "soak" in report and (report["soak"]["bad"] or report["soak"]["differences"]):
        failed.append("soak: error replies or statistics differ")
    print("FAILED: " + "; ".join(failed) if failed else "All reliability checks hold.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
