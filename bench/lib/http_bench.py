"""The HTTP load: targets started, warmed up, then run in interleaved rounds (A B C A B C ...)
in keep-alive and ``Connection: close`` modes, with fresh announces sampled around each run."""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib.data import (
    BenchData,
    copy_auth_cache,
    ensure_bench_data,
    ensure_database,
    reset_redis,
    setup_django,
    wait_for_flushes,
    warm_auth_cache,
)
from bench.lib.env import DATABASE_NAME
from bench.lib.procs import (
    cpu_since,
    cpu_snapshot,
    service_roots,
    stop_server,
    tree_cpu_seconds,
)
from bench.lib.targets import (
    BASELINE,
    Target,
    TargetHooks,
    build_targets,
    opentracker_announces,
)
from bench.lib.wrk import (
    CONNECTIONS,
    MODES,
    THREADS,
    WRK_LUA,
    WRK_PREFILL_LUA,
    PathFactory,
    SampleResult,
    WrkResult,
    run_wrk,
    sample_replies,
)

MAX_LINES = 1_500_000  # paths per wrk run (bounds wrk's memory)
MIN_RATE = 15_000.0  # announces/s assumed when sizing a path file before any measurement
WARMUP_RUNS = 5


@dataclass(frozen=True)
class Config:
    """What one invocation runs. Durations are seconds; ``baseline`` is another checkout
    whose PBTS targets run beside this one's (``None``: none)."""

    duration: float
    rounds: int
    warmup: float
    settle: float
    samples: int  # fresh announces sampled before and after each run
    memory_peers: int
    targets: tuple[str, ...]
    load: bool
    write_doc: bool
    quick: bool
    baseline: Path | None = None
    #: Prefill every torrent's swarm to ``peers_per_torrent`` peers before warming up, so that
    #: every reply carries numwant=50 peers (issue 17); 0: swarms start empty.
    peers_per_torrent: int = 0


@dataclass
class RunResult:
    """One timed run of one target in one mode. CPU figures are seconds."""

    target: str
    mode: str
    round: int
    wrk: WrkResult
    server_cpu: float
    services_cpu: float
    wrk_cpu: float
    sample: SampleResult
    #: Announces the server itself says it answered during the run (``None``: it cannot say).
    served: int | None = None


@dataclass
class Row:
    """All runs of one target in one mode, and the figures the table shows."""

    target: str
    mode: str
    runs: list[RunResult] = field(default_factory=list)
    unavailable: str = ""

    @property
    def requests(self) -> int:
        """Requests over all runs."""
        return sum(r.wrk.requests for r in self.runs)

    @property
    def rate(self) -> float:
        """Announces per second over all runs."""
        seconds = sum(r.wrk.seconds for r in self.runs)
        return self.requests / seconds if seconds else 0.0

    @property
    def p50_ms(self) -> float:
        """Mean of the runs' median latencies (ms)."""
        return sum(r.wrk.p50_ms for r in self.runs) / len(self.runs)

    @property
    def p99_ms(self) -> float:
        """Mean of the runs' 99th-percentile latencies (ms)."""
        return sum(r.wrk.p99_ms for r in self.runs) / len(self.runs)

    @property
    def cpu(self) -> float:
        """Server CPU seconds over all runs."""
        return sum(r.server_cpu for r in self.runs)

    @property
    def services_cpu(self) -> float:
        """Redis + PostgreSQL + the target's Celery flusher: CPU seconds over all runs."""
        return sum(r.services_cpu for r in self.runs)

    @property
    def wrk_cpu(self) -> float:
        """wrk's CPU seconds over all runs."""
        return sum(r.wrk_cpu for r in self.runs)

    def per_announce(self, seconds: float) -> str:
        """``seconds`` of CPU over all runs as microseconds per announce (a table cell)."""
        return f"{1e6 * seconds / self.requests:.0f}" if self.requests else "-"

    @property
    def sample(self) -> SampleResult:
        """Every sampled reply of every run."""
        total = SampleResult()
        for r in self.runs:
            total.add(r.sample)
        return total

    @property
    def errors(self) -> int:
        """Connect, write and timeout errors and non-2xx replies over all runs."""
        return sum(r.wrk.other_errors + r.wrk.non_2xx for r in self.runs)

    @property
    def read_errors(self) -> int:
        """Connections the server closed under wrk over all runs."""
        return sum(r.wrk.read_errors for r in self.runs)

    @property
    def served(self) -> int | None:
        """Announces the server counted over all runs (``None`` if any run has no count)."""
        counts = [r.served for r in self.runs]
        return None if not counts or None in counts else sum(counts)

    @property
    def wraps(self) -> int:
        """Times a wrk thread ran out of fresh paths and started again (should be 0)."""
        return sum(r.wrk.wraps for r in self.runs)


class Bench:
    """The load part of a run: servers, warm-up, interleaved rounds, results by (target, mode)."""

    def __init__(self, cfg: Config, data: BenchData, workdir: Path) -> None:
        self.cfg = cfg
        self.factory = PathFactory(data)
        self.workdir = workdir
        self.script = workdir / "replay.lua"
        self.script.write_text(WRK_LUA)
        self.prefill_script = workdir / "prefill.lua"
        self.prefill_script.write_text(WRK_PREFILL_LUA)
        self.rates: dict[tuple[str, str], float] = {}
        self.rows: dict[tuple[str, str], Row] = {}
        self.warmups: dict[str, list[float]] = {}
        self.service_pids = service_roots()
        self.prefixes: list[str] = []
        self.hooks: list[TargetHooks] = []  # of the live targets that have them

    def paths_file(self, target: Target, mode: str, seconds: float) -> Path:
        """Write the paths one run needs: twice the best rate seen so far (at least
        ``MIN_RATE``) times ``seconds``, bounded by ``MAX_LINES``."""
        rate = max(self.rates.get((target.name, m), MIN_RATE) for m in MODES)
        count = min(MAX_LINES, int(2 * rate * seconds) + 2000)
        paths = self.factory.take(
            target.name,
            count,
            passkey_in_path=target.passkey_in_path,
            passkey_first=target.passkey_first,
        )
        path = self.workdir / f"paths-{target.name}-{mode}.txt"
        path.write_text("\n".join(paths) + "\n")
        return path

    def sample(self, target: Target) -> SampleResult:
        """Sample ``cfg.samples`` fresh announces on the target."""
        paths = self.factory.take(
            target.name,
            self.cfg.samples,
            passkey_in_path=target.passkey_in_path,
            passkey_first=target.passkey_first,
        )
        return sample_replies(target.server.port, paths)

    def warm_up(self, target: Target) -> None:
        """Untimed keep-alive runs until the rate settles (within 15% of the previous one, at
        most ``WARMUP_RUNS``): imports, connections, per-process caches, rate estimate."""
        rates: list[float] = []
        while len(rates) < WARMUP_RUNS:
            paths = self.paths_file(target, MODES[0], self.cfg.warmup)
            result = run_wrk(target.server.port, self.script, paths, MODES[0], self.cfg.warmup)
            rates.append(result.rate)
            self.rates[(target.name, MODES[0])] = max(rates)
            if len(rates) > 1 and abs(rates[-1] - rates[-2]) <= 0.15 * rates[-2]:
                break
        self.warmups[target.name] = rates
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"  warm-up {target.name}: {shown} announces/s", flush=True)

    def measure(self, target: Target, mode: str, round_no: int) -> RunResult:
        """One timed run, with fresh samples before and after. CPU counters are read when wrk's
        threads are released together (its start barrier); the server's at wrk's end, the
        services' (Redis, PostgreSQL, the target's Celery flusher) once the statistics of the
        run are flushed, so that they include the flush of its last announces. The server's
        own count of answered announces is read before and after (:func:`served_since`).
        A target with hooks (Ocelot) has its own database side (``hooks.service_pids``), read
        once its database holds the run's announces (``hooks.wait_written``)."""
        sample = self.sample(target)
        paths = self.paths_file(target, mode, self.cfg.duration)
        if not wait_for_flushes(self.prefixes):
            print("  (statistics still waiting for a flush after 60 s; measuring anyway)")
        for hooks in self.hooks:
            if not hooks.wait_written(60.0):
                print("  (Ocelot's announces not all in MariaDB after 60 s; measuring anyway)")
        time.sleep(self.cfg.settle)
        pid = target.server.proc.pid
        hooks = target.hooks
        if hooks is not None:
            roots = hooks.service_pids()
        else:
            flusher = [target.server.flusher.pid] if target.server.flusher else []
            roots = self.service_pids + flusher
        mark = served_mark(target)
        start: dict[str, float] = {}
        svc0: dict[int, float] = {}

        def on_start() -> None:
            start["cpu"] = tree_cpu_seconds(pid)
            svc0.update(cpu_snapshot(roots))

        wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = run_wrk(
            target.server.port, self.script, paths, mode, self.cfg.duration, on_start=on_start
        )
        wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1 = tree_cpu_seconds(pid)
        # A count read over HTTP comes first: Ocelot's wait_written announces a marker peer.
        served = None if target.cache_prefix else served_since(target, mark)
        if target.cache_prefix and not wait_for_flushes([target.cache_prefix]):
            print("  (this run's statistics not flushed within 60 s; its count is short)")
        if hooks is not None and not hooks.wait_written(60.0):
            print("  (this run's announces not all in MariaDB within 60 s)")
        svc = cpu_since(svc0, roots)
        if target.cache_prefix:
            served = served_since(target, mark)
        sample.add(self.sample(target))
        key = (target.name, mode)
        self.rates[key] = max(self.rates.get(key, 0.0), wrk.rate)
        wrk_cpu = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
        return RunResult(
            target.name,
            mode,
            round_no,
            wrk,
            cpu1 - start["cpu"],
            svc,
            wrk_cpu,
            sample,
            served,
        )

    def prefill(self, target: Target) -> None:
        """Fill every torrent's swarm with ``cfg.peers_per_torrent`` fresh peers (numwant=0,
        untimed), in wrk runs of at most ``MAX_LINES // 2`` paths that stop once each path is
        answered; then wait for the statistics flush."""
        total = len(self.factory.hashes) * self.cfg.peers_per_torrent
        started, done = time.monotonic(), 0
        while done < total:
            count = min(MAX_LINES // 2, total - done)
            paths = self.factory.take(
                target.name,
                count,
                passkey_in_path=target.passkey_in_path,
                numwant=0,
                passkey_first=target.passkey_first,
            )
            path = self.workdir / f"prefill-{target.name}.txt"
            path.write_text("\n".join(paths) + "\n")
            result = run_wrk(
                target.server.port, self.prefill_script, path, MODES[0], 600.0, once=True
            )
            if result.requests < count:
                raise RuntimeError(
                    f"prefill of {target.name}: {result.requests} of {count} answered"
                )
            done += count
        if target.cache_prefix and not wait_for_flushes([target.cache_prefix], timeout=300):
            print(f"  (prefill of {target.name}: statistics not flushed within 300 s)")
        if target.hooks is not None and not target.hooks.wait_written(300.0):
            print(f"  (prefill of {target.name}: announces not all written within 300 s)")
        seconds = time.monotonic() - started
        print(
            f"  prefill {target.name}: {total:,} peers ({self.cfg.peers_per_torrent} per"
            f" torrent) in {seconds:.0f} s",
            flush=True,
        )

    def run(self, targets: list[Target]) -> list[Row]:
        """Start every available target, warm up, run the interleaved rounds, stop them all."""
        for target in targets:
            for mode in MODES:
                self.rows[(target.name, mode)] = Row(
                    target.name, mode, unavailable=target.unavailable
                )
        try:
            self._start_all(targets)
            live = [t for t in targets if t.server is not None]
            self.prefixes = [t.cache_prefix for t in live if t.cache_prefix]
            self.hooks = [t.hooks for t in live if t.hooks is not None]
            if self.cfg.peers_per_torrent:
                for target in live:
                    self.prefill(target)
            for target in live:
                self.warm_up(target)
            for round_no in range(1, self.cfg.rounds + 1):
                for mode in MODES:
                    for target in round_order(live, round_no):
                        result = self.measure(target, mode, round_no)
                        self.rows[(target.name, mode)].runs.append(result)
                        print_run(result)
        finally:
            for target in targets:
                if target.server is not None:
                    stop_server(target.server)
                if target.hooks is not None:
                    target.hooks.stop()
        return list(self.rows.values())

    def _start_all(self, targets: list[Target]) -> None:
        for target in targets:
            if target.unavailable:
                print(f"  {target.name}: {target.unavailable}", flush=True)
                continue
            try:
                target.server = target.start(self.workdir)
            except RuntimeError as exc:
                target.unavailable = f"failed to start: {str(exc).splitlines()[0]}"
                print(f"  {target.name}: {exc}", flush=True)
                for mode in MODES:
                    self.rows[(target.name, mode)].unavailable = target.unavailable
                continue
            print(f"  {target.name}: pid {target.server.proc.pid}, port {target.server.port}")


def round_order(targets: list[Target], round_no: int) -> list[Target]:
    """The targets in the order round ``round_no`` (from 1) runs them: as given, except that
    in even rounds a baseline checkout's target runs before this checkout's same target (the
    pair swaps), so that neither always follows the other."""
    order = list(targets)
    if round_no % 2 == 0:
        for i in range(len(order) - 1):
            if order[i + 1].name == order[i].name + BASELINE:
                order[i], order[i + 1] = order[i + 1], order[i]
    return order


def print_run(r: RunResult) -> None:
    """One line per timed run, as it finishes."""
    w = r.wrk
    services = "mariadbd" if r.target == "ocelot" else "redis+pg+celery"
    print(
        f"  round {r.round} {r.target:16} {r.mode:10} {w.rate:9,.0f}/s  p50 {w.p50_ms:7.2f} ms"
        f"  p99 {w.p99_ms:7.2f} ms  server CPU {r.server_cpu:5.1f} s"
        f"  {services} {r.services_cpu:4.1f} s  wrk {r.wrk_cpu:4.1f} s"
        f"  errors {w.other_errors + w.non_2xx}  closed {w.read_errors}  wraps {w.wraps}"
        f"  refused {sum(r.sample.refusals.values())}/{r.sample.sent}"
        f"  peers/reply {r.sample.peers / r.sample.ok if r.sample.ok else 0:.1f}",
        flush=True,
    )
    if r.served is not None:
        ratio = w.requests / r.served if r.served else float("inf")
        print(
            f"    counts: wrk {w.requests:,}, server {r.served:,} answered, wrk/server {ratio:.3f}",
            flush=True,
        )
        if abs(ratio - 1) > 0.02:
            print(
                f"    WARNING: {r.target} {r.mode}: wrk's count differs from the server's by"
                f" {100 * (ratio - 1):+.1f}%",
                flush=True,
            )


def served_mark(target: Target) -> object:
    """Where the server's own count of answered announces stands now, for
    :func:`served_since`: for opentracker its ``/stats?mode=conn`` count of successful
    announces, for Ocelot its report page's, for a PBTS target the database's clock (read
    once the flush has drained)."""
    if target.server is None:
        return None
    if target.hooks is not None:
        return target.hooks.announces(target.server.port)
    if not target.cache_prefix:
        return opentracker_announces(target.server.port)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def served_since(target: Target, mark: object) -> int | None:
    """Announces the server says it answered since ``mark`` (:func:`served_mark`); ``None``:
    it cannot say. For a PBTS target, the ``tracker_torrenthistory`` rows its statistics flush
    wrote or updated since then: every bench announce is a fresh (member, torrent) pair of the
    target, so a flush writes one row per answered announce (call it once the flush drained)."""
    if mark is None or target.server is None:
        return None
    if target.hooks is not None:
        now = target.hooks.announces(target.server.port)
        return None if now is None else now - mark
    if not target.cache_prefix:
        now = opentracker_announces(target.server.port)
        return None if now is None else now - mark
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracker_torrenthistory WHERE updated_at >= %s", [mark])
        return cursor.fetchone()[0]


@dataclass
class LoadResult:
    """The load part's figures: a row per (target, mode), warm-up rates per target."""

    rows: list[Row]
    warmups: dict[str, list[float]]


def run_load(cfg: Config) -> LoadResult:
    """Data, servers, interleaved runs (servers stopped on every path)."""
    print(f"Setting up data (database {DATABASE_NAME}, Redis db 6) ...", flush=True)
    started = time.monotonic()
    ensure_database()
    setup_django()
    data = ensure_bench_data()
    reset_redis()
    targets = build_targets(cfg.targets, data, cfg.baseline)
    prefixes = [t.cache_prefix for t in targets if t.cache_prefix and not t.unavailable]
    if prefixes:
        warm_auth_cache(data, prefixes[0])
        for prefix in prefixes[1:]:
            copy_auth_cache(prefixes[0], prefix)
    print(f"  ready in {time.monotonic() - started:.1f} s", flush=True)
    print(
        f"Load: wrk {THREADS} threads, {CONNECTIONS} connections, {cfg.duration:g} s per run, "
        f"{cfg.rounds} rounds, modes {', '.join(MODES)}; every request a fresh peer, tracker "
        "settings at their defaults (min interval 900 s kept).",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pbts-bench-"))
    workdir.chmod(0o755)  # opentracker drops to nobody and must still read its whitelist
    try:
        bench = Bench(cfg, data, workdir)
        return LoadResult(bench.run(targets), bench.warmups)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        reset_redis()
