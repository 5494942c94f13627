"""A short soak (25 s; the 10-minute one is ``bench/reliability.py --soak``): trackerd under
steady load with peers joining and leaving; no error reply, memory flat after the warm-up,
the statistics in the database equal to what was sent."""

from __future__ import annotations

from tests.reliability.figures import record
from tests.reliability.soak import soak

SECONDS, WARMUP = 25.0, 10.0
MAX_GROWTH_KIB = 2048  # RSS growth allowed after the warm-up: a leak of ~250 B per announce


def test_short_soak_has_no_error_reply_flat_memory_and_exact_statistics(
    private_pg, private_redis, tmp_path
):
    result = soak(
        private_pg, private_redis, tmp_path, seconds=SECONDS, rate=300, warmup=WARMUP,
        sample_every=2.5,
    )  # fmt: skip
    assert result.bad == 0, result.bad_detail
    assert result.sent > 0.9 * SECONDS * 300
    assert result.joins > 500 and result.leaves > 100
    assert result.differences == []
    assert result.credited_bytes > 0
    growth = result.rss_max_kib - result.rss_at_warmup_kib
    assert growth <= MAX_GROWTH_KIB, result.samples
    record(
        "soak-short",
        seconds=SECONDS,
        sent=result.sent,
        joins=result.joins,
        leaves=result.leaves,
        growth_kib=growth,
        rss_kib=result.rss_end_kib,
    )
