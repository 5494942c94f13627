"""What the announce benchmarks share (``bench/announce.py``, ``bench/udp.py``).

- :mod:`bench.lib.env`: where the benchmarks run (database, Redis db, the doc), the data's
  shape, and the environment of every server they start;
- :mod:`bench.lib.data`: the bench torrents, members and auth caches;
- :mod:`bench.lib.procs`: starting and stopping servers, CPU seconds from ``/proc``;
- :mod:`bench.lib.targets`: the HTTP trackers under test (opentracker, the Django view,
  trackerd; also those of a baseline checkout);
- :mod:`bench.lib.wrk`: announce paths, wrk runs and sampled replies;
- :mod:`bench.lib.http_bench`: the interleaved HTTP rounds;
- :mod:`bench.lib.memory`: memory per peer (the store, tracemalloc, the Redis layout);
- :mod:`bench.lib.report`: tables and ``docs/bench-announce.md``;
- :mod:`bench.lib.udp_load` and :mod:`bench.lib.udp_bench`: the BEP 15 load processes and runs.

Importing the package picks the build every process measures: the compiled one
(``make speedups``, ``tracker/speedups.py``) unless the caller set ``PBTS_SPEEDUPS=0`` to
measure the sources. It is set here, before anything imports ``tracker``, and every process
the benchmarks start inherits it.
"""

import os

os.environ["PBTS_SPEEDUPS"] = os.environ.get("PBTS_SPEEDUPS") or "1"
