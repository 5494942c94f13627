"""UDP announce benchmark (BEP 15): trackerd (one and two processes) vs opentracker's UDP.

Usage (from the project root; PostgreSQL and Redis on 127.0.0.1, Debian's ``opentracker``
installed)::

    .venv/bin/python bench/udp.py            # full run (~3 min), writes the UDP section of
                                             # docs/bench-announce.md
    .venv/bin/python bench/udp.py --quick    # 3 s runs, one round, no doc

Options: ``--duration S``, ``--rounds N``, ``--targets opentracker,trackerd-1w,trackerd-2w``,
``--generators N`` (load processes), ``--window N`` (announces in flight per load process),
``--no-doc``.

What it does (it shares ``bench/announce.py``'s data and helpers: database ``pbts_bench``,
Redis db 6, 10,000 approved torrents, 2,000 members with passkeys):

1. Servers, all on 127.0.0.1: opentracker (``listen.udp``, whitelist of the same info_hashes),
   ``manage.py trackerd --workers 1`` and ``--workers 2`` (UDP on 127.0.0.1, ``SO_REUSEPORT``
   with two), each trackerd with its own Celery worker and beat flushing the statistics, as
   in production.
2. Load: there is no UDP tracker load tool in Debian, so ``--generators`` Python processes
   (``--generator-child``) each open 8 UDP sockets (so that ``SO_REUSEPORT`` spreads them over
   trackerd's workers), get a connection id per socket (BEP 15 connect; clients reuse it for a
   minute, and so do these), then keep ``--window`` announces in flight: every announce is a
   fresh peer (``-TR4060-`` + 12 random bytes, event started, numwant 50, random ``left``, 25%
   seeders), its passkey in BEP 41 URL data (``/announce/<passkey>``; opentracker ignores it),
   and no (member, torrent) pair repeats, so tracker rules stay at their defaults without
   refusals. Packets are built before the timed window. Every reply is read and classified
   (announce, error message, or lost after 250 ms of silence), so the refusal count is exact.
3. Targets interleave in rounds (A B C A B C); each is warmed up first (untimed), and each
   timed run starts once no target has statistics waiting for its flusher. Printed per
   target: announces/s, the ratio to opentracker, p50/p99 latency (every 8th reply), the
   server's CPU seconds (process tree, /proc), errors and losses, and the CPU share of the
   busiest load process (a load process near 100% would be the bottleneck: it is not, see the
   doc). The load average is read before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import announce as base  # noqa: E402  (bench/announce.py: data, servers, /proc helpers)

ROOT = base.ROOT
DOC_PATH = base.DOC_PATH
SECTION = "## UDP announces (bench/udp.py)"
PROTOCOL_ID = 0x41727101980
SOCKETS_PER_GENERATOR = 8
CONNECTION_ID_SECONDS = 55.0  # load processes reconnect before BEP 15's one-minute client limit
LOST_AFTER = 0.25  # seconds of silence after which the announces in flight count as lost
LATENCY_EVERY = 8  # every n-th reply is timed
MIN_RATE = 40_000.0  # announces/s assumed when sizing a run before any measurement
DEFAULT_TARGETS = "opentracker,trackerd-1w,trackerd-2w"
_ANNOUNCE_BODY = struct.Struct(">II20s20sqqqiIIiH")  # after the 8-byte connection id


# --- the load process -------------------------------------------------------------------


def build_bodies(spec: dict) -> list[bytes]:
    """Announce packets without their connection id, one per fresh peer ``i`` in
    ``[start, start + count)``: torrent ``i % T``, member ``(i // T + 7 t) % M`` (the
    (member, torrent) pairs never repeat within T x M peers), transaction id ``i``."""
    hashes = [bytes.fromhex(h) for h in spec["hashes"]]
    passkeys = [p.encode() for p in spec["passkeys"]]
    torrents, members = len(hashes), len(passkeys)
    rng = random.Random(spec["seed"])
    bodies = []
    for i in range(spec["start"], spec["start"] + spec["count"]):
        t = i % torrents
        url = b"/announce/" + passkeys[(i // torrents + 7 * t) % members]
        port = rng.randrange(1025, 65536)
        while port in base.BLACKLISTED_PORTS:
            port = rng.randrange(1025, 65536)
        left = 0 if rng.random() < base.SEEDER_SHARE else rng.randrange(1, 1 << 33)
        peer_id = base.PEER_ID_PREFIX + rng.randbytes(12)
        body = _ANNOUNCE_BODY.pack(
            1, i & 0xFFFFFFFF, hashes[t], peer_id, 0, left, 0, 2, 0, rng.getrandbits(32), 50, port
        )
        bodies.append(body + bytes((2, len(url))) + url + b"\x00")
    return bodies


def connection_id(sock: socket.socket, attempts: int = 5) -> bytes:
    """BEP 15 connect on a connected, blocking socket (bounded retries)."""
    for attempt in range(attempts):
        tid = random.getrandbits(31)
        sock.send(struct.pack(">QII", PROTOCOL_ID, 0, tid))
        with contextlib.suppress(TimeoutError):
            while True:
                reply = sock.recv(64)
                if len(reply) >= 16 and struct.unpack(">II", reply[:8]) == (0, tid):
                    return reply[8:16]
        time.sleep(0.1 * (attempt + 1))
    raise RuntimeError("no connect reply")


def generator_child() -> None:
    """Hidden mode: read a JSON spec on stdin, build the packets, print ``READY``, wait for
    ``GO``, keep ``window`` announces in flight for ``duration`` seconds over
    ``SOCKETS_PER_GENERATOR`` sockets, print the result as JSON."""
    spec = json.loads(sys.stdin.readline())
    bodies = build_bodies(spec)
    socks = []
    for _ in range(SOCKETS_PER_GENERATOR):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1.0)
        sock.connect((spec["host"], spec["port"]))
        socks.append(sock)
    ids = [connection_id(sock) for sock in socks]
    connected_at = time.monotonic()
    for sock in socks:
        sock.setblocking(False)
    sent_at = [0.0] * len(bodies)
    print("READY", flush=True)
    if sys.stdin.readline().strip() != "GO":
        return
    window, duration, start = spec["window"], spec["duration"], spec["start"]
    count = len(bodies)
    nsocks = len(socks)
    sends = [s.send for s in socks]
    recvs = [s.recv for s in socks]
    fds = {s.fileno(): k for k, s in enumerate(socks)}
    ok = lost = wraps = sent = 0
    errors: Counter = Counter()
    other = 0
    latencies: list[float] = []
    inflight = 0
    i = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    end = began + duration
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        while inflight < window:
            if i == count:
                i = 0
                wraps += 1
            k = i % nsocks
            try:
                sends[k](ids[k] + bodies[i])
            except BlockingIOError:
                break
            sent_at[i] = now
            i += 1
            inflight += 1
            sent += 1
        ready, _, _ = select.select(socks, [], [], LOST_AFTER)
        if not ready:
            lost += inflight
            inflight = 0
            continue
        now = time.perf_counter()
        for sock in ready:
            recv = recvs[fds[sock.fileno()]]
            while True:
                try:
                    data = recv(96)
                except BlockingIOError:
                    break
                if inflight > 0:  # a reply after its announce was counted lost is not
                    inflight -= 1
                action = data[3] if len(data) >= 8 else -1
                if action == 1:
                    ok += 1
                    if ok % LATENCY_EVERY == 0:
                        tid = int.from_bytes(data[4:8], "big")
                        latencies.append(now - sent_at[(tid - start) % count])
                elif action == 3:
                    errors[data[8:].decode("utf-8", "replace")] += 1
                else:
                    other += 1
        if time.monotonic() - connected_at > CONNECTION_ID_SECONDS:  # as a client would
            for sock in socks:
                sock.setblocking(True)
                sock.settimeout(1.0)
            ids = [connection_id(sock) for sock in socks]
            connected_at = time.monotonic()
            for sock in socks:
                sock.setblocking(False)
    elapsed = time.perf_counter() - began
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    drain_until = time.perf_counter() + 10 * LOST_AFTER  # replies still due are not lost
    while inflight > 0 and time.perf_counter() < drain_until:
        ready, _, _ = select.select(socks, [], [], LOST_AFTER)
        for sock in ready:
            with contextlib.suppress(BlockingIOError):
                while inflight > 0:
                    recvs[fds[sock.fileno()]](96)
                    inflight -= 1
    latencies.sort()
    print(
        json.dumps(
            {
                "ok": ok,
                "sent": sent,
                "lost": lost + inflight,
                "errors": dict(errors),
                "other": other,
                "wraps": wraps,
                "elapsed": elapsed,
                "cpu": cpu,
                "latencies": latencies[:: max(1, len(latencies) // 2000)],
            }
        ),
        flush=True,
    )


# --- the parent ---------------------------------------------------------------------------


@dataclass
class Target:
    """A UDP tracker under test."""

    name: str
    udp_port: int = 0
    server: base.Server | None = None
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
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Row:
    """Runs of one target summed over rounds."""

    target: str
    runs: list[Run] = field(default_factory=list)

    def total(self, name: str) -> float:
        return sum(getattr(r, name) for r in self.runs)

    @property
    def rate(self) -> float:
        seconds = self.total("seconds")
        return self.total("ok") / seconds if seconds else 0.0

    def percentile(self, q: float) -> float:
        values = sorted(v for r in self.runs for v in r.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0

    @property
    def errors(self) -> Counter:
        out: Counter = Counter()
        for r in self.runs:
            out.update(r.errors)
        return out


def free_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (bounded attempts)."""
    for _ in range(50):
        port = base.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


def start_opentracker(workdir: Path, info_hashes: list[str], target: Target) -> base.Server:
    """opentracker with ``listen.udp`` (and a TCP port, which tells us it is up)."""
    binary = shutil.which("opentracker")
    if binary is None:
        raise RuntimeError("opentracker not installed (apt-get install -y opentracker)")
    (workdir / "whitelist.txt").write_text("\n".join(info_hashes) + "\n")
    tcp, target.udp_port = base.free_port(), free_udp_port()
    conf = workdir / "opentracker-udp.conf"
    conf.write_text(
        f"listen.tcp 127.0.0.1:{tcp}\nlisten.udp 127.0.0.1:{target.udp_port}\n"
        f"access.whitelist {workdir / 'whitelist.txt'}\n"
    )
    return base.start_server(
        "opentracker", [binary, "-f", str(conf)], port=tcp, env={}, workdir=workdir
    )


def start_trackerd(workdir: Path, target: Target, workers: int) -> base.Server:
    """``manage.py trackerd --workers W`` with UDP on 127.0.0.1 (HTTP port for the start
    check), its own Redis prefix, and a Celery worker with beat."""
    port, target.udp_port = base.free_port(), free_udp_port()
    cmd = [sys.executable, "manage.py", "trackerd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--udp-port", str(target.udp_port)]
    cmd += ["--udp-host", "127.0.0.1"]
    env = base.target_env(target.name, f"bench-udp-{target.name}")
    server = base.start_server(target.name, cmd, port=port, env=env, workdir=workdir)
    return base.start_flusher(server, env, workdir)


class Bench:
    """Servers, load processes and the interleaved runs."""

    def __init__(
        self, args: argparse.Namespace, data: base.BenchData, workdir: Path, prefixes: list[str]
    ) -> None:
        self.args = args
        self.data = data
        self.workdir = workdir
        self.roots = base.service_roots()
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
                [sys.executable, __file__, "--generator-child"],
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
            cpu0 = base.tree_cpu_seconds(target.server.proc.pid)
            for proc in procs:
                proc.stdin.write("GO\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            results = [json.loads(proc.stdout.readline()) for proc in procs]  # type: ignore[union-attr]
            cpu1 = base.tree_cpu_seconds(target.server.proc.pid)
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
                if not base.wait_for_flushes(self.prefixes):
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
        f"- Announce pipeline: {base.build_measured()}.",
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


def format_table(head: tuple[str, ...], cells: list[tuple[str, ...]], markdown: bool) -> str:
    """As ``bench/announce.py``'s."""
    return base.format_table(head, cells, markdown)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, one round, no doc")
    parser.add_argument("--duration", type=float, help="seconds per run (10; quick: 3)")
    parser.add_argument("--rounds", type=int, help="rounds (2; quick: 1)")
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help="comma-separated subset")
    parser.add_argument("--generators", type=int, default=2, help="load processes")
    parser.add_argument("--window", type=int, default=64, help="in flight per load process")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument("--generator-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rounds = max(1, args.rounds or (1 if args.quick else 2))
    args.warmup = 1.0 if args.quick else 2.0
    args.warmups = 1 if args.quick else 2
    args.target_names = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.write_doc = not (args.quick or args.no_doc) and args.targets == DEFAULT_TARGETS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generator_child:
        generator_child()
        return 0
    started = time.monotonic()
    load_before = loadavg()
    print(f"Announce pipeline: {base.build_measured()}", flush=True)
    print(f"Load average before: {load_before}", flush=True)
    print("Setting up data (database pbts_bench, Redis db 6) ...", flush=True)
    base.ensure_database()
    base.setup_django()
    data = base.ensure_bench_data()
    base.reset_redis()
    targets = [Target(name) for name in args.target_names]
    prefixes = [f"bench-udp-{t.name}" for t in targets if t.name.startswith("trackerd")]
    if prefixes:
        base.warm_auth_cache(data, prefixes[0])
        for prefix in prefixes[1:]:
            base.copy_auth_cache(prefixes[0], prefix)
    workdir = Path(tempfile.mkdtemp(prefix="pbts-bench-udp-"))
    workdir.chmod(0o755)  # opentracker drops to nobody and must still read its whitelist
    try:
        for target in targets:
            if target.name == "opentracker":
                target.server = start_opentracker(workdir, data.info_hashes, target)
            else:
                workers = int(target.name.removeprefix("trackerd-").removesuffix("w"))
                target.server = start_trackerd(workdir, target, workers)
            print(f"  {target.name} on udp://127.0.0.1:{target.udp_port}", flush=True)
        time.sleep(3.0)  # let trackerd finish preloading standings
        print(
            f"Load: {args.generators} processes x {SOCKETS_PER_GENERATOR} sockets, "
            f"{args.window} in flight each, {args.duration:g} s per run, {args.rounds} rounds",
            flush=True,
        )
        rows, warmups = Bench(args, data, workdir, prefixes).run(targets)
    finally:
        for target in targets:
            if target.server is not None:
                base.stop_server(target.server)
        shutil.rmtree(workdir, ignore_errors=True)
        base.reset_redis()
    load_after = loadavg()
    elapsed = time.monotonic() - started
    print("\nUDP announce throughput (sum of replies / sum of seconds over rounds):")
    print(format_table(TABLE_HEAD, table_cells(rows), markdown=False))
    print(f"Load average before: {load_before}; after: {load_after}")
    print(f"Total time: {elapsed / 60:.1f} min")
    if args.write_doc:
        write_doc(args, rows, warmups, (load_before, load_after), elapsed)
        print(f"Figures written to {DOC_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
