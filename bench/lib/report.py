"""What a run prints and writes: the throughput and memory tables, the comparison with a
baseline checkout, and ``docs/bench-announce.md`` (rewritten by a full run; its hand-written
``## Observations`` section is kept)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.lib.env import DATABASE_NAME, DOC_PATH, MEMBERS, TORRENTS, build_measured
from bench.lib.http_bench import Config, LoadResult, Row
from bench.lib.machine import cpu_model
from bench.lib.memory import FLUSH_EVERY, MemoryResult
from bench.lib.targets import BASELINE, trackerd_available
from bench.lib.wrk import CONNECTIONS, THREADS

TARGET_BYTES_PER_PEER = 200


def _refusal_cell(row: Row) -> str:
    sample = row.sample
    refused = sum(sample.refusals.values()) + sum(sample.errors.values())
    share = 100.0 * refused / sample.sent if sample.sent else 0.0
    return f"{refused}/{sample.sent} ({share:.1f}%)"


TABLE_HEAD = (
    "target",
    "mode",
    "announces/s",
    "vs opentracker",
    "p50 ms",
    "p99 ms",
    "server CPU s",
    "CPU us/announce",
    "redis+pg+celery CPU s",
    "redis+pg+celery us/announce",
    "wrk us/announce",
    "refused (sampled)",
    "wrk errors",
    "closed by server",
)


COUNTS_HEAD = ("target", "mode", "wrk requests", "server answered", "wrk/server", "peers/reply")


def count_cells(rows: list[Row]) -> list[tuple[str, ...]]:
    """wrk's request count beside the server's own count of answered announces (and the mean
    number of peers in the sampled replies), one tuple per (target, mode) that ran."""
    cells = []
    for row in rows:
        if not row.runs:
            continue
        served, sample = row.served, row.sample
        ratio = f"{row.requests / served:.3f}" if served else "-"
        peers = f"{sample.peers / sample.ok:.1f}" if sample.ok else "-"
        shown = f"{served:,}" if served is not None else "-"
        cells.append((row.target, row.mode, f"{row.requests:,}", shown, ratio, peers))
    return cells


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    """The result table as text cells, one tuple per (target, mode)."""
    anchor = {r.mode: r.rate for r in rows if r.target == "opentracker" and r.runs}
    cells = []
    for row in rows:
        if row.unavailable or not row.runs:
            label = row.unavailable or "no runs"
            cells.append((row.target, row.mode, label, *["-"] * (len(TABLE_HEAD) - 3)))
            continue
        ratio = f"{row.rate / anchor[row.mode]:.3f}" if anchor.get(row.mode) else "-"
        cells.append(
            (
                row.target,
                row.mode,
                f"{row.rate:,.0f}",
                ratio,
                f"{row.p50_ms:.2f}",
                f"{row.p99_ms:.2f}",
                f"{row.cpu:.1f}",
                row.per_announce(row.cpu),
                f"{row.services_cpu:.1f}",
                row.per_announce(row.services_cpu),
                row.per_announce(row.wrk_cpu),
                _refusal_cell(row),
                str(row.errors),
                str(row.read_errors),
            )
        )
    return cells


def format_table(head: tuple[str, ...], cells: list[tuple[str, ...]], markdown: bool) -> str:
    """Align a table for the terminal, or write it as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line) for line in [head, *cells])


def memory_cells(mem: MemoryResult) -> list[tuple[str, ...]]:
    """The memory table: bytes per peer next to the target."""
    target = f"<= {TARGET_BYTES_PER_PEER}"

    def verdict(value: float) -> str:
        return (
            "meets"
            if value <= TARGET_BYTES_PER_PEER
            else f"{value / TARGET_BYTES_PER_PEER:.1f}x over"
        )

    cells = [
        (
            f"in-process MemoryPeerStore, VmRSS growth ({mem.peers:,} peers)",
            f"{mem.store_bytes_per_peer:.0f}",
            target,
            verdict(mem.store_bytes_per_peer),
        ),
        (
            f"in-process MemoryPeerStore, tracemalloc ({mem.trace_peers:,} peers)",
            f"{mem.trace_bytes_per_peer:.0f}",
            target,
            verdict(mem.trace_bytes_per_peer),
        ),
    ]
    if mem.redis is None:
        cells.append((mem.redis_note, "-", target, "-"))
        return cells
    for label, value in (
        ("Redis: peers hashes (MEMORY USAGE)", mem.redis_peers_bytes_per_peer),
        ("Redis: every key incl. peerlog stream (MEMORY USAGE)", mem.redis_keys_bytes_per_peer),
        ("Redis: INFO used_memory growth", mem.redis_used_bytes_per_peer),
    ):
        cells.append((label, f"{value:.0f}", target, verdict(value)))
    return cells


def print_memory(mem: MemoryResult) -> None:
    """The memory section on the terminal."""
    head = ("measure", "bytes/peer", "target", "verdict")
    print(format_table(head, memory_cells(mem), markdown=False))
    print(f"  feeding {mem.peers:,} announces into the store took {mem.store_seconds:.1f} s")
    print("  top allocation sites (tracemalloc, bytes per peer):")
    for site, size in mem.trace_sites:
        print(f"    {size:6.0f}  {site}")
    if mem.redis:
        kinds = ", ".join(
            f"{k} {v / mem.peers:.0f}" for k, v in sorted(mem.redis["by_kind"].items())
        )
        print(f"  Redis by key kind (bytes/peer): {kinds}; {mem.redis_note}")
        print(f"  Redis hash-max-listpack-entries: {mem.redis['listpack_entries']}")


def _version(cmd: list[str], pattern: str = r"(\d+(?:\.\d+)+)") -> str:
    """The first match of ``pattern`` in a command's output (a version number), or '?'."""
    match = re.search(pattern, _cmd_output(cmd))
    return match.group(1) if match else "?"


def _cmd_output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def machine_facts() -> list[str]:
    """Machine, OS and tool versions for the doc."""
    cpu = cpu_model()
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    redis_version = _version(["redis-server", "--version"], r"v=(\S+)")
    import django

    return [
        f"CPU: {cpu}, {os.cpu_count()} cores (shared by wrk and the servers); "
        f"RAM {mem_kb / 2**20:.0f} GiB; Linux {platform.release()}",
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"gunicorn {_version([str(Path(sys.executable).parent / 'gunicorn'), '--version'])}",
        f"opentracker {_cmd_output(['dpkg-query', '-W', '-f=${Version}', 'opentracker'])} "
        f"(Debian package, whitelist build), wrk {_version(['wrk', '--version'])}",
        f"PostgreSQL {_version(['psql', '--version'])}, Redis {redis_version}",
        f"Announce pipeline: {build_measured()}",
    ]


def _kept_observations() -> list[str]:
    """The hand-written ``## Observations`` section of the current doc (kept on rewrite)."""
    try:
        text = DOC_PATH.read_text()
    except OSError:
        return []
    start = text.find("\n## Observations")
    return text[start + 1 :].rstrip("\n").splitlines() if start >= 0 else []


def write_doc(cfg: Config, load: LoadResult, mem: MemoryResult, elapsed: float) -> None:
    """Write docs/bench-announce.md from a full run (a hand-written ``## Observations``
    section at its end is carried over)."""
    rows = load.rows
    warmups = "; ".join(
        f"{name} {', '.join(f'{rate:,.0f}' for rate in rates)}"
        for name, rates in load.warmups.items()
    )
    trackerd_note = (
        "`trackerd` was available and measured."
        if trackerd_available()
        else "`trackerd` was not available in this checkout when the figures were taken: its rows "
        "read *not available*; rerun the script once the command exists."
    )
    lines = [
        "# Announce benchmark",
        "",
        f"Figures of a full run of `bench/announce.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({elapsed / 60:.1f} min). Regenerate with `.venv/bin/python bench/announce.py` "
        "(this file is rewritten); `--quick` for a short check.",
        "",
        "## Machine",
        "",
        *[f"- {fact}" for fact in machine_facts()],
        "",
        "## How",
        "",
        f"- {TORRENTS:,} approved torrents, {MEMBERS:,} members with passkeys (database "
        f"`{DATABASE_NAME}`, Redis db 6); opentracker whitelists the same info_hashes.",
        f"- wrk, {THREADS} threads, {CONNECTIONS} connections, {cfg.duration:g} s per run, "
        f"{cfg.rounds} rounds, targets interleaved (A B C A B C), keep-alive and "
        "`Connection: close`. Every request is a fresh peer (`-TR4060-` + 12 random bytes, "
        "event=started, compact=1, numwant=50, random `left`, 25% seeders), and no (member, "
        "torrent) pair repeats, so tracker rules stay at their defaults (min interval 900 s, "
        "3 peers per member per torrent) without refusals.",
        "- The Django view: gunicorn, 2 workers x 4 threads (gthread), DEBUG off, Redis-shared "
        "peer store; auth cache warmed and kept for an hour (`PBTS_AUTH_CACHE_SECONDS=3600`).",
        "- As in production, each PBTS target has its own Celery worker with beat (its own "
        "broker, Redis db 7-9) that flushes the statistics to PostgreSQL every "
        "`PBTS_FLUSH_SECONDS`; the servers only accumulate them in Redis. trackerd preloads "
        "every passkey and torrent at start. Before each timed run the benchmark waits until "
        "no target has statistics waiting for its flusher, so one target's flush backlog does "
        "not load Redis and PostgreSQL during another's run.",
        "- *refused (sampled)*: fresh announces sent one by one before and after each run with "
        "http.client and decoded with fastbencode; failures and malformed replies counted.",
        "- *server CPU*: utime+stime of the server process tree during the runs (/proc); "
        "*redis+pg+celery CPU*: the same for the machine's Redis and PostgreSQL (what the "
        "server asks of them, plus anything else running) and the target's Celery worker; "
        "*us/announce*: those seconds, and wrk's, over the announces answered, so the three "
        "columns show how the 2 cores were shared per announce. "
        "*vs opentracker*: ratio of announces/s in the same mode.",
        "",
        "## Throughput",
        "",
        format_table(TABLE_HEAD, table_rows(rows), markdown=True),
        "",
        trackerd_note,
        "",
        "## Memory per peer",
        "",
        format_table(("measure", "bytes/peer", "target", "verdict"), memory_cells(mem), True),
        "",
        "Top allocation sites of the in-process store (tracemalloc, bytes per peer; "
        "`memory.py` lines are the objects the rules create per announce and the store "
        "keeps):",
        "",
        *[f"- {size:.0f} B: `{site}`" for site, size in mem.trace_sites],
        "",
        "## Notes",
        "",
        "- opentracker closes the connection after every reply (HTTP/1.1 without a "
        "`Connection: close` header): under keep-alive wrk writes its next request into the "
        "closed connection and reconnects (*closed by server*); both modes are one connection "
        "per announce for it.",
        "- *wrk errors*: connect, write and timeout errors and non-2xx replies. Each run's paths "
        "are sized at twice the best rate seen, so no peer announces twice.",
        f"- Warm-up (untimed keep-alive runs of {cfg.warmup:g} s until the rate settles), "
        f"announces/s: {warmups}.",
        "- wrk and the servers share the 2 cores; *wrk* CPU is printed per run on the terminal.",
        "- Memory: peers' uploaded/downloaded/left are random non-zero counters, peer_id, "
        "address and event fresh objects per announce, as the rules build them; the "
        f"accumulated credits are taken every {FLUSH_EVERY:,} announces, as the statistics "
        "flush does every few seconds, so what is measured is what the peers hold.",
    ]
    observations = _kept_observations()
    if observations:
        lines += ["", *observations]
    DOC_PATH.write_text("\n".join(lines) + "\n")


BASELINE_HEAD = (
    "target",
    "mode",
    "announces/s",
    "baseline announces/s",
    "ratio",
    "CPU us/announce",
    "baseline CPU us/announce",
    "ratio",
)


def baseline_cells(rows: list[Row]) -> list[tuple[str, ...]]:
    """This checkout against the baseline's same target and mode (measured in the same run):
    announces/s and server CPU per announce, with their ratios (this / baseline)."""
    by_key = {(r.target, r.mode): r for r in rows if r.runs}
    cells = []
    for (name, mode), row in by_key.items():
        base = by_key.get((name + BASELINE, mode))
        if name.endswith(BASELINE) or base is None:
            continue
        cpu, base_cpu = row.cpu / row.requests, base.cpu / base.requests
        cells.append(
            (
                name,
                mode,
                f"{row.rate:,.0f}",
                f"{base.rate:,.0f}",
                f"{row.rate / base.rate:.3f}",
                f"{1e6 * cpu:.1f}",
                f"{1e6 * base_cpu:.1f}",
                f"{cpu / base_cpu:.3f}",
            )
        )
    return cells
