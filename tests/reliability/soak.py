"""The soak: trackerd under steady load with peers joining and leaving, its memory sampled,
every reply checked, and the statistics compared with what was sent at the end.

Used by ``bench/reliability.py --soak`` (10 minutes) and the test suite (a short version).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.kit import PrivatePostgres, PrivateRedis, wait_until
from tests.reliability.world import Load, PrivateSite, Swarms


@dataclass
class SoakResult:
    """Figures of one soak (seconds, announces, KiB)."""

    seconds: float
    rate: float
    sent: int = 0
    ok: int = 0
    joins: int = 0
    leaves: int = 0
    bad: int = 0
    bad_detail: dict = field(default_factory=dict)
    slowest_s: float = 0.0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t s, RSS KiB, Redis KiB)
    warmup_s: float = 0.0
    differences: list[str] = field(default_factory=list)
    flushed_batches: int = 0
    credited_bytes: int = 0

    def _after_warmup(self) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if s[0] >= self.warmup_s]

    @property
    def rss_at_warmup_kib(self) -> int:
        """trackerd's RSS at the first sample after the warm-up (KiB)."""
        return self._after_warmup()[0][1]

    @property
    def rss_end_kib(self) -> int:
        """trackerd's RSS at the last sample (KiB)."""
        return self.samples[-1][1]

    @property
    def rss_max_kib(self) -> int:
        """The largest RSS after the warm-up (KiB)."""
        return max(s[1] for s in self._after_warmup())

    @property
    def slope_kib_per_min(self) -> float:
        """Least-squares slope of RSS over time after the warm-up (KiB per minute)."""
        points = self._after_warmup()
        n = len(points)
        mean_t = sum(p[0] for p in points) / n
        mean_r = sum(p[1] for p in points) / n
        var = sum((p[0] - mean_t) ** 2 for p in points)
        if not var:
            return 0.0
        cov = sum((p[0] - mean_t) * (p[1] - mean_r) for p in points)
        return cov / var * 60.0


def soak(
    pg: PrivatePostgres,
    redis: PrivateRedis,
    log_dir: Path,
    *,
    seconds: float,
    rate: float = 300.0,
    sample_every: float = 5.0,
    warmup: float | None = None,
    members: int = 50,
    torrents: int = 20,
    pairs: int = 500,
    seed: int = 1414,
    progress=None,
) -> SoakResult:
    """Run a soak of ``seconds`` at ``rate`` announces/s (one keep-alive connection, paced)
    over ``pairs`` (member, torrent) pairs, two peer slots each (a peer leaves with chance
    0.05 per announce and comes back with a new peer_id); trackerd's RSS and Redis's used
    memory sampled every ``sample_every`` s; the warm-up (default: a fifth of the run) is left
    out of the memory figures. A Celery worker with embedded beat flushes every 3 s. At the
    end trackerd is stopped (SIGTERM), the statistics flushed and compared with the book.
    ``progress(text)`` is called with a line now and then."""
    site = PrivateSite(pg, redis, name=f"soak_{int(time.time())}", log_dir=log_dir)
    result = SoakResult(
        seconds=seconds, rate=rate, warmup_s=seconds / 5 if warmup is None else warmup
    )
    try:
        data = site.sitectl("seed-tracker", members=members, torrents=torrents)
        site.worker(beat=True)
        trackerd, port = site.trackerd()
        swarms = Swarms(data, pairs=pairs, leave=0.05, rng=random.Random(seed))
        load = Load(swarms, port, rate=rate).start()
        started = time.monotonic()
        client = redis.client()
        next_sample = 0.0
        while (now := time.monotonic() - started) < seconds:
            if now >= next_sample:
                used = int(client.info("memory")["used_memory"]) // 1024
                result.samples.append((round(now, 1), trackerd.rss_kib(), used))
                next_sample += sample_every
                if progress is not None:
                    c = swarms.counts
                    progress(
                        f"{now:6.0f} s  sent {c.sent:8d}  bad {c.bad}  "
                        f"trackerd RSS {result.samples[-1][1]} KiB  Redis {used} KiB"
                    )
            time.sleep(min(0.5, max(0.0, next_sample - now)))
        used = int(client.info("memory")["used_memory"]) // 1024
        result.samples.append((round(time.monotonic() - started, 1), trackerd.rss_kib(), used))
        counts = load.stop()
        result.slowest_s = load.slowest
        result.sent, result.ok, result.bad = counts.sent, counts.ok, counts.bad
        result.joins, result.leaves = counts.joins, counts.leaves
        result.bad_detail = {**counts.failures, **counts.errors}
        stopped = trackerd.stop()
        if stopped != 0:
            raise RuntimeError(f"trackerd exited with {stopped}:\n{trackerd.log()}")
        wait_until(site.stats_settled, timeout=120, what="statistics flushed", every=0.5)
        result.differences = swarms.book.differences(site, swarms.member_ids)
        result.flushed_batches = site.flushed_batches()
        result.credited_bytes = sum(u + d for u, d in swarms.book.ledger.values())
    finally:
        site.close()
    return result
