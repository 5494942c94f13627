"""The UDP benchmark's parent side: targets (opentracker's UDP, trackerd with one and two
workers), load processes started per run (``bench.lib.udp_load``), interleaved rounds, the
table and the UDP section of ``docs/bench-announce.md``."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.lib.data import BenchData, wait_for_flushes
from bench.lib.env import DOC_PATH, ROOT, build_measured
from bench.lib.procs import Server, free_port, service_roots, start_server, tree_cpu_seconds
from bench.lib.report import format_table
from bench.lib.targets import start_flusher, target_env
from bench.lib.udp_load import SOCKETS_PER_GENERATOR

SECTION = "## UDP announces (bench/udp.py)"
MIN_RATE = 40_000.0  # announces/s assumed when sizing a run before any measurement
DEFAULT_TARGETS = "opentracker,trackerd-1w,trackerd-2w"


@dataclass
class Target:
    """A UDP tracker under test."""

    name: str
    udp_port: int = 0
    server: Server | None = None
    next_peer: int = 0
    best_rate: float = 0.0


@dataclass
class Run:
    """One timed run of one target."""

    target: str
    round_no: int
    ok: int
    seconds: float
    server_cpu: float
    lost: int
    errors: Counter
    other: int
    wraps: int
    latencies: list[float]
    generator_cpu_share: float  # of the busiest load process: CPU seconds / wall seconds

    @property
    def rate(self) -> float:
        """Announces answered per second."""
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Row:
    """Runs of one target summed over rounds."""

    target: str
    runs: list[Run] = field(default_factory=list)

    def total(self, name: str) -> float:
        """The sum of field ``name`` over the runs."""
        return sum(getattr(r, name) for r in self.runs)

    @property
    def rate(self) -> float:
        """Announces answered per second over all runs."""
        seconds = self.total("seconds")
        return self.total("ok") / seconds if seconds else 0.0

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0-1) of the sampled latencies, in milliseconds."""
        values = sorted(v for r in self.runs for v in r.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0

    @property
    def errors(self) -> Counter:
        """Error replies by message over all runs."""
        out: Counter = Counter()
        for r in self.runs:
            out.update(r.errors)
        return out


def free_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (bounded attempts)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


def start_opentracker(workdir: Path, info_hashes: list[str], target: Target) -> Server:
    """opentracker with ``listen.udp`` (and a TCP port, which tells us it is up)."""
    binary = shutil.which("opentracker")
    if binary is None:
        raise RuntimeError("opentracker not installed (apt-get install -y opentracker)")
    (workdir / "whitelist.txt").write_text("\n".join(info_hashes) + "\n")
    tcp, target.udp_port = free_port(), free_udp_port()
    conf = workdir / "opentracker-udp.conf"
    conf.write_text(
        f"listen.tcp 127.0.0.1:{tcp}\nlisten.udp 127.0.0.1:{target.udp_port}\n"
        f"access.whitelist {workdir / 'whitelist.txt'}\n"
    )
    return start_server("opentracker", [binary, "-f", str(conf)], port=tcp, env={}, workdir=workdir)


def start_trackerd(workdir: Path, target: Target, workers: int) -> Server:
    """``manage.py trackerd --workers W`` with UDP on 127.0.0.1 (HTTP port for the start
    check), its own Redis prefix, and a Celery worker with beat."""
    port, target.udp_port = free_port(), free_udp_port()
    cmd = [sys.executable, "manage.py", "trackerd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--udp-port", str(target.udp_port)]
    cmd += ["--udp-host", "127.0.0.1"]
    env = target_env(target.name, f"bench-udp-{target.name}")
    server = start_server(target.name, cmd, port=port, env=env, workdir=workdir)
    return start_flusher(server, env, workdir)


class Bench:
    """Servers, load processes and the interleaved runs."""

    def __init__(
        self, args: argparse.Namespace, data: BenchData, workdir: Path, prefixes: list[str]
    ) -> None:
        self.args = args
        self.data = data
        self.workdir = workdir
        self.roots = service_roots()
        self.prefixes = prefixes  # the PBTS targets' key prefixes (their flush backlogs)

    def load(self, target: Target, seconds: float, round_no: int) -> Run:
        """One run: start the load processes, wait until their packets are built, go."""
        gens = self.args.generators
        rate = max(target.best_rate, MIN_RATE)
        per_gen = int(rate * seconds * 2 / gens) + 1000
        procs = []
        for _ in range(gens):
            spec = {
                "host": "127.0.0.1",
                "port": target.udp_port,
                "start": target.next_peer,
                "count": per_gen,
                "seed": f"{target.name}:{target.next_peer}",
                "window": self.args.window,
                "duration": seconds,
                "hashes": self.data.info_hashes,
                "passkeys": self.data.passkeys,
            }
            target.next_peer += per_gen
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.lib.udp_load"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
            procs.append(proc)
        try:
            for proc in procs:
                line = proc.stdout.readline().strip()  # type: ignore[union-attr]
                if line != "READY":
                    raise RuntimeError(f"load process failed to start: {line!r}")
            assert target.server is not None
            cpu0 = tree_cpu_seconds(target.server.proc.pid)
            for proc in procs:
                proc.stdin.write("GO\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            results = [json.loads(proc.stdout.readline()) for proc in procs]  # type: ignore[union-attr]
            cpu1 = tree_cpu_seconds(target.server.proc.pid)
        finally:
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.stdin.close()  # type: ignore[union-attr]
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        errors: Counter = Counter()
        for r in results:
            errors.update(r["errors"])
        run = Run(
            target=target.name,
            round_no=round_no,
            ok=sum(r["ok"] for r in results),
            seconds=max(r["elapsed"] for r in results),
            server_cpu=cpu1 - cpu0,
            lost=sum(r["lost"] for r in results),
            errors=errors,
            other=sum(r["other"] for r in results),
            wraps=sum(r["wraps"] for r in results),
            latencies=[v for r in results for v in r["latencies"]],
            generator_cpu_share=max(r["cpu"] / r["elapsed"] for r in results),
        )
        target.best_rate = max(target.best_rate, run.rate)
        return run

    def run(self, targets: list[Target]) -> tuple[list[Row], dict[str, list[float]]]:
        """Warm up every target, then run the interleaved rounds; returns the rows and the
        warm-up rates per target."""
        warmups: dict[str, list[float]] = {}
        for target in targets:
            warmups[target.name] = []
            for _ in range(self.args.warmups):
                warm = self.load(target, self.args.warmup, 0)
                warmups[target.name].append(warm.rate)
                print(f"  warm-up {target.name}: {warm.rate:,.0f} announces/s", flush=True)
        rows = {t.name: Row(t.name) for t in targets}
        for round_no in range(1, self.args.rounds + 1):
            for target in targets:
                # One target's statistics backlog must not load Redis and PostgreSQL during
                # another's run (as in bench/announce.py).
                if not wait_for_flushes(self.prefixes):
                    print("  (statistics still waiting for a flush after 60 s; measuring anyway)")
                run = self.load(target, self.args.duration, round_no)
                rows[target.name].runs.append(run)
                problems = sum(run.errors.values()) + run.lost + run.other
                print(
                    f"  round {round_no} {target.name}: {run.rate:,.0f} announces/s, server CPU "
                    f"{run.server_cpu:.1f} s, load process CPU {run.generator_cpu_share:.0%}, "
                    f"errors/lost {problems}" + (f" {dict(run.errors)}" if run.errors else ""),
                    flush=True,
                )
        return list(rows.values()), warmups


TABLE_HEAD = (
    "target",
    "announces/s",
    "vs opentracker",
    "p50 ms",
    "p99 ms",
    "server CPU s",
    "CPU us/announce",
    "errors",
    "lost",
    "busiest load process CPU",
)


def table_cells(rows: list[Row]) -> list[tuple[str, ...]]:
    """One line per target."""
    anchor = next((r.rate for r in rows if r.target == "opentracker"), 0.0)
    cells = []
    for row in rows:
        ok = row.total("ok")
        errors = sum(row.errors.values()) + int(row.total("other"))
        cells.append(
            (
                row.target,
                f"{row.rate:,.0f}",
                f"{row.rate / anchor:.3f}" if anchor else "-",
                f"{row.percentile(0.5):.2f}",
                f"{row.percentile(0.99):.2f}",
                f"{row.total('server_cpu'):.1f}",
                f"{row.total('server_cpu') / ok * 1e6:.0f}" if ok else "-",
                f"{errors}/{ok + errors}",
                f"{int(row.total('lost'))}",
                f"{max(r.generator_cpu_share for r in row.runs):.0%}",
            )
        )
    return cells


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (what ``uptime`` prints)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_doc(
    args: argparse.Namespace,
    rows: list[Row],
    warmups: dict[str, list[float]],
    loads: tuple[str, str],
    elapsed: float,
) -> None:
    """Replace (or append) this benchmark's section at the end of docs/bench-announce.md; the
    HTTP figures above it are ``bench/announce.py``'s and are left alone."""
    warm = "; ".join(f"{n} {', '.join(f'{r:,.0f}' for r in rates)}" for n, rates in warmups.items())
    errors = Counter()
    for row in rows:
        errors.update({f"{row.target}: {k}": v for k, v in row.errors.items()})
    lines = [
        SECTION,
        "",
        f"Figures of a full run of `bench/udp.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({elapsed / 60:.1f} min); regenerate with `.venv/bin/python bench/udp.py` (this "
        "section is rewritten, the rest of the file is left alone). Load average (1, 5, 15 "
        f"min) before: {loads[0]}; after: {loads[1]} (2 cores, shared with other work).",
        "",
        format_table(TABLE_HEAD, table_cells(rows), markdown=True),
        "",
        f"- Same data as above (10,000 torrents, 2,000 passkeys); {args.generators} Python load "
        f"processes x {SOCKETS_PER_GENERATOR} UDP sockets, {args.window} announces in flight per "
        f"process; {args.duration:g} s per run, {args.rounds} rounds, targets interleaved; a "
        "connection id per socket (BEP 15 connect), reused as clients do; every announce a "
        "fresh peer with its passkey in BEP 41 URL data, numwant 50, 25% seeders; no "
        "(member, torrent) pair repeats.",
        f"- Announce pipeline: {build_measured()}.",
        "- trackerd-1w and -2w: `manage.py trackerd --workers 1|2 --udp-host 127.0.0.1`, "
        "passkeys and accounting on, peers shared through Redis, a Celery worker with beat "
        "flushing statistics; opentracker: Debian's whitelist build, `listen.udp`, default "
        "settings (it ignores the URL data).",
        "- *errors*: error replies (refusals) over all replies; *lost*: announces never "
        "answered (no reply within 250 ms, and none in the 2.5 s drain after the run). "
        "*busiest load process CPU*: CPU seconds over wall seconds of the busiest load "
        "process; well below 100% it was waiting for replies, not the bottleneck.",
        f"- Warm-up (untimed {args.warmup:g} s runs), announces/s: {warm}.",
    ]
    if errors:
        lines.append(f"- Error replies seen: {dict(errors)}.")
    lines.append("")
    observations = _kept_udp_observations()
    if observations:
        lines += observations
    try:
        text = DOC_PATH.read_text()
    except OSError:
        text = ""
    start = text.find(SECTION)
    head = text[:start].rstrip("\n") if start >= 0 else text.rstrip("\n")
    DOC_PATH.write_text(head + "\n\n" + "\n".join(lines).rstrip("\n") + "\n")


def _kept_udp_observations() -> list[str]:
    """A hand-written ``### Observations (UDP)`` part of the section, kept on rewrite."""
    try:
        text = DOC_PATH.read_text()
    except OSError:
        return []
    start = text.find(SECTION)
    if start < 0:
        return []
    mark = text.find("### Observations (UDP)", start)
    return text[mark:].rstrip("\n").splitlines() if mark >= 0 else []
