"""Announce benchmark: opentracker (and Ocelot) vs the Django view vs ``trackerd``, and memory
per peer.

Usage (from the project root; PostgreSQL and Redis on 127.0.0.1, Debian's ``opentracker`` and
``wrk`` installed: ``apt-get install -y opentracker wrk``)::

    .venv/bin/python bench/announce.py            # full run (~6 min), writes docs/bench-announce.md
    .venv/bin/python bench/announce.py --quick    # 3 s runs, 100,000-peer memory test, no doc
    .venv/bin/python bench/announce.py --memory   # memory per peer only (add --quick: 100,000)
    .venv/bin/python bench/announce.py --quick --baseline /tmp/pbts-before
                                                  # and another checkout's targets beside these
    .venv/bin/python bench/announce.py --populated --duration 5 --rounds 1
                                                  # swarms prefilled to ~70 peers (issue 17),
                                                  # targets opentracker, ocelot, trackerd-1w

Options: ``--duration S`` and ``--rounds N`` override the run length and the number of rounds,
``--targets opentracker,ocelot,django,trackerd`` picks targets (``trackerd-1w`` or
``trackerd-2w`` alone too), ``--no-doc`` skips the doc, ``--baseline PATH`` also runs the
Django view and trackerd of the checkout at ``PATH`` (its compiled build made with ``make
speedups`` there), each right after this checkout's same target (before it in even rounds),
and prints their ratios. ``--populated`` first fills every torrent's swarm with
``--peers-per-torrent`` (70) fresh peers, so that every timed reply carries numwant=50 peers
(targets opentracker, ocelot and trackerd-1w unless ``--targets`` says otherwise; the Django
view would take minutes to fill); it skips the memory test and never writes the doc. The
library is ``bench.lib`` (this file only reads the command line).

Target ``ocelot`` (issue 17's anchor, ``bench/lib/ocelot.py``): WhatCD/Ocelot 1.0, the C++
tracker of Gazelle sites, which keeps per-member statistics in MariaDB as PBTS does in
PostgreSQL. Its GPL source is never in the repository: put a checkout of WhatCD/Ocelot in
``.local/src/ocelot/`` (or point ``PBTS_OCELOT_SRC`` at one), with Debian's ``g++
libmysql++-dev libmariadb-dev libev-dev libboost-iostreams-dev libboost-system-dev
mariadb-server mariadb-client``; without them its rows read "not available" and the other
targets run. It is built into ``.local/build/ocelot/`` (once), served by a private MariaDB
(``.local/mariadb/``, Unix socket only, started if not running and stopped at the end if this
run started it) with database ``pbts_bench_ocelot``: the six Gazelle tables it uses, the same
10,000 info_hashes and 2,000 passkeys as the other targets, the ``-TR4`` client prefix.
Announces use its path layout ``/<passkey>/announce?``; it flushes to MariaDB every 3 s, caps
replies at 50 peers and keeps connections alive. Its count is the ``successful announcements``
line of its report page, its database-side CPU (the redis+pg+celery columns) the MariaDB
server's, read once MariaDB holds the run's announces.

Every wrk run starts its threads together (a FIFO barrier in its Lua script: wrk's clock would
otherwise count the requests of its first thread while the second still loads its paths), CPU
counters are read from that moment, and wrk's count is checked against the server's own count
of answered announces (opentracker's ``/stats?mode=conn``; Ocelot's report page; for PBTS
targets the history rows their statistics flush wrote): both are printed with their ratio,
with a warning beyond 2 %.

What it does, every run (re-runnable; it owns the PostgreSQL database ``pbts_bench``, or
``PBTS_BENCH_DATABASE_URL``'s, and Redis db 6, which it empties at start and at the end):

1. Data: 10,000 approved torrents, 2,000 members with passkeys and ledgers, the ``-TR4`` client
   prefix (created once, reused afterwards); what earlier runs' flushes wrote (history rows,
   torrents' counters) is emptied and ``tracker_torrent`` vacuumed; the auth cache is warmed for
   every PBTS server.
2. Servers, each on a free 127.0.0.1 port: opentracker (whitelist of the same 10,000
   info_hashes, path ``/announce``), the Django view under gunicorn (2 workers x 4 threads),
   and ``manage.py trackerd --workers 1`` and ``--workers 2`` when that command exists. Every
   PBTS server gets its own Redis key prefix, so idle servers never replay another's peers.
3. Load: wrk, 2 threads, 50 connections, replaying a file of distinct announces (a fresh
   ``-TR4060-`` peer per request, event=started, compact=1, numwant=50, random ``left``, the
   (member, torrent) pairs never repeat, so neither ``min interval`` nor the 3-peers-per-member
   limit turns requests into refusals; tracker settings stay at their defaults). Targets are
   interleaved in rounds (A B C A B C ...), in keep-alive and ``Connection: close`` modes. Before
   and after every run a plain HTTP client sends fresh announces and parses the bencoded replies:
   the refusal rate must be ~0.
4. Memory: a fresh subprocess feeds 1,000,000 peers (``--quick``: 100,000) over the 10,000
   torrents into ``MemoryPeerStore.announce()`` and reports the VmRSS growth per peer
   (tracemalloc gives the allocation sites on 100,000); then the Redis peer layout
   (``tracker.announce.redis_sync``) is filled with the same peers and measured with
   ``MEMORY USAGE`` per key and ``INFO memory``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

if not __package__:  # run as a file (python bench/announce.py): import bench as a package, from
    # the project root, which replaces bench/ on the path (its scripts' names would shadow
    # modules: bench/receipts.py, bench/markdown.py).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.lib.env import DOC_PATH, ROOT, build_measured
from bench.lib.http_bench import Config, run_load
from bench.lib.memory import measure_memory
from bench.lib.report import (
    BASELINE_HEAD,
    COUNTS_HEAD,
    TABLE_HEAD,
    baseline_cells,
    count_cells,
    format_table,
    print_memory,
    table_rows,
    write_doc,
)
from bench.lib.targets import DEFAULT_TARGETS

POPULATED_TARGETS = "opentracker,ocelot,trackerd-1w"


def parse_args(argv: list[str] | None = None) -> Config:
    """Parse the command line into a :class:`~bench.lib.http_bench.Config`.

    Raises:
        SystemExit: bad arguments, or a ``--baseline`` that is not a checkout.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, 100,000-peer memory")
    parser.add_argument("--memory", action="store_true", help="memory per peer only")
    parser.add_argument("--duration", type=float, help="seconds per run (10; quick: 3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per target and mode")
    parser.add_argument(
        "--targets",
        help=f"comma-separated subset of {DEFAULT_TARGETS},ocelot"
        f" (--populated: {POPULATED_TARGETS})",
    )
    parser.add_argument(
        "--populated", action="store_true", help="prefill swarms so replies carry 50 peers"
    )
    parser.add_argument(
        "--peers-per-torrent", type=int, default=70, help="--populated: peers per torrent (70)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose targets run beside these"
    )
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "manage.py").is_file():
        parser.error(f"--baseline {args.baseline}: no manage.py there")
    quick = args.quick
    targets = args.targets or (POPULATED_TARGETS if args.populated else DEFAULT_TARGETS)
    full = not (quick or args.memory or args.no_doc) and args.duration is None
    full = full and args.rounds >= 2 and targets == DEFAULT_TARGETS and not args.baseline
    full = full and not args.populated
    return Config(
        duration=args.duration or (3.0 if quick else 10.0),
        rounds=max(1, args.rounds),
        warmup=1.0 if quick else 2.0,
        settle=1.0 if quick else 3.0,
        samples=50 if quick else 100,
        memory_peers=100_000 if quick else 1_000_000,
        targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
        load=not args.memory or args.populated,
        write_doc=full,
        quick=quick,
        baseline=args.baseline.resolve() if args.baseline else None,
        peers_per_torrent=max(1, args.peers_per_torrent) if args.populated else 0,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark as the command line asks; print the tables (and write the doc)."""
    cfg = parse_args(argv)
    started = time.monotonic()
    print(f"Announce pipeline: {build_measured()}", flush=True)
    load = run_load(cfg) if cfg.load else None
    mem = None if cfg.peers_per_torrent else measure_memory(cfg.memory_peers)
    if mem is not None:
        print_memory(mem)
    if load:
        print("\nAnnounce throughput (sum of requests / sum of seconds over rounds):")
        print(format_table(TABLE_HEAD, table_rows(load.rows), markdown=False))
        if cfg.baseline:
            print(f"\nThis checkout / the baseline ({cfg.baseline}), same run:")
            print(format_table(BASELINE_HEAD, baseline_cells(load.rows), markdown=False))
        print("\nwrk's count against the server's own count of answered announces:")
        print(format_table(COUNTS_HEAD, count_cells(load.rows), markdown=False))
        for row in load.rows:
            problems = row.sample.refusals + row.sample.errors if row.runs else Counter()
            if problems:
                print(f"Sampled problems, {row.target} {row.mode}: {dict(problems)}")
            if row.target != "opentracker" and row.wraps:
                print(
                    f"WARNING: {row.target} {row.mode}: wrk reused its paths {row.wraps} times;"
                    " repeated peers may have been refused (Announce too soon)."
                )
    elapsed = time.monotonic() - started
    print(f"\nTotal time: {elapsed / 60:.1f} min")
    if cfg.write_doc and load and mem is not None:
        write_doc(cfg, load, mem, elapsed)
        print(f"Figures written to {DOC_PATH.relative_to(ROOT)}")
    elif not cfg.quick and cfg.load:
        print("Doc not written (only a full default run writes it).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
