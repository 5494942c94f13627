"""UDP announce benchmark (BEP 15): trackerd (one and two processes) vs opentracker's UDP.

Usage (from the project root; PostgreSQL and Redis on 127.0.0.1, Debian's ``opentracker``
installed)::

    .venv/bin/python bench/udp.py            # full run (~3 min), writes the UDP section of
                                             # docs/bench-announce.md
    .venv/bin/python bench/udp.py --quick    # 3 s runs, one round, no doc

Options: ``--duration S``, ``--rounds N``, ``--targets opentracker,trackerd-1w,trackerd-2w``,
``--generators N`` (load processes), ``--window N`` (announces in flight per load process),
``--no-doc``.

What it does (it shares ``bench/announce.py``'s library, ``bench.lib``: database ``pbts_bench``,
Redis db 6, 10,000 approved torrents, 2,000 members with passkeys):

1. Servers, all on 127.0.0.1: opentracker (``listen.udp``, whitelist of the same info_hashes),
   ``manage.py trackerd --workers 1`` and ``--workers 2`` (UDP on 127.0.0.1, ``SO_REUSEPORT``
   with two), each trackerd with its own Celery worker and beat flushing the statistics, as
   in production.
2. Load: there is no UDP tracker load tool in Debian, so ``--generators`` Python processes
   (``python -m bench.lib.udp_load``) each open 8 UDP sockets (so that ``SO_REUSEPORT``
   spreads them over trackerd's workers), get a connection id per socket (BEP 15 connect;
   clients reuse it for a minute, and so do these), then keep ``--window`` announces in
   flight: every announce is a fresh peer (``-TR4060-`` + 12 random bytes, event started,
   numwant 50, random ``left``, 25% seeders), its passkey in BEP 41 URL data
   (``/announce/<passkey>``; opentracker ignores it), and no (member, torrent) pair repeats,
   so tracker rules stay at their defaults without refusals. Packets are built before the
   timed window. Every reply is read and classified (announce, error message, or lost after
   250 ms of silence), so the refusal count is exact.
3. Targets interleave in rounds (A B C A B C); each is warmed up first (untimed), and each
   timed run starts once no target has statistics waiting for its flusher. Printed per
   target: announces/s, the ratio to opentracker, p50/p99 latency (every 8th reply), the
   server's CPU seconds (process tree, /proc), errors and losses, and the CPU share of the
   busiest load process (a load process near 100% would be the bottleneck: it is not, see the
   doc). The load average is read before and after.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/udp.py): import bench as a package, from
    # the project root, which replaces bench/ on the path (its scripts' names would shadow
    # modules: bench/receipts.py, bench/markdown.py).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.lib.data import (
    copy_auth_cache,
    ensure_bench_data,
    ensure_database,
    reset_redis,
    setup_django,
    warm_auth_cache,
)
from bench.lib.env import DATABASE_NAME, DOC_PATH, ROOT, build_measured
from bench.lib.procs import stop_server
from bench.lib.report import format_table
from bench.lib.udp_bench import (
    DEFAULT_TARGETS,
    TABLE_HEAD,
    Bench,
    Target,
    loadavg,
    start_opentracker,
    start_trackerd,
    table_cells,
    write_doc,
)
from bench.lib.udp_load import SOCKETS_PER_GENERATOR


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (the run's options; durations in seconds)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, one round, no doc")
    parser.add_argument("--duration", type=float, help="seconds per run (10; quick: 3)")
    parser.add_argument("--rounds", type=int, help="rounds (2; quick: 1)")
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help="comma-separated subset")
    parser.add_argument("--generators", type=int, default=2, help="load processes")
    parser.add_argument("--window", type=int, default=64, help="in flight per load process")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rounds = max(1, args.rounds or (1 if args.quick else 2))
    args.warmup = 1.0 if args.quick else 2.0
    args.warmups = 1 if args.quick else 2
    args.target_names = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.write_doc = not (args.quick or args.no_doc) and args.targets == DEFAULT_TARGETS
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the UDP benchmark as the command line asks; print the table (and write the doc)."""
    args = parse_args(argv)
    started = time.monotonic()
    load_before = loadavg()
    print(f"Announce pipeline: {build_measured()}", flush=True)
    print(f"Load average before: {load_before}", flush=True)
    print(f"Setting up data (database {DATABASE_NAME}, Redis db 6) ...", flush=True)
    ensure_database()
    setup_django()
    data = ensure_bench_data()
    reset_redis()
    targets = [Target(name) for name in args.target_names]
    prefixes = [f"bench-udp-{t.name}" for t in targets if t.name.startswith("trackerd")]
    if prefixes:
        warm_auth_cache(data, prefixes[0])
        for prefix in prefixes[1:]:
            copy_auth_cache(prefixes[0], prefix)
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
                stop_server(target.server)
        shutil.rmtree(workdir, ignore_errors=True)
        reset_redis()
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
