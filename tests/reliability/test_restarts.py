"""Service restarts under the tracker: Redis restarted during a load of announces on trackerd
(trackerd keeps answering; the statistics from before and after land once), PostgreSQL
restarted during a statistics flush (the batch is applied once when it is back).

Both run on private servers (``tests/reliability/kit.py``): the machine's shared PostgreSQL and
Redis are never restarted.
"""

from __future__ import annotations

import random
import time

from tests.reliability.figures import record
from tests.reliability.kit import PrivateRedis, wait_until
from tests.reliability.world import Announcer, Load, Swarms


def test_redis_restart_under_announce_load_keeps_answering_and_counts_once(make_site):
    # Redis as the production compose file runs it: with an append-only file, so that a
    # restart keeps the peers and the credits not yet flushed.
    redis = PrivateRedis(appendonly=True).start()
    try:
        site = make_site(redis=redis, PBTS_FLUSH_SECONDS="1")
        seed = site.sitectl("seed-tracker", members=20, torrents=5)
        members = [m["id"] for m in seed["members"]]
        site.worker(beat=True)  # flushes every second, through Redis restarts
        trackerd, port = site.trackerd()
        load = Load(Swarms(seed, pairs=60, rng=random.Random(7)), port, rate=250).start()
        time.sleep(4)
        before = site.flushed_batches()
        load.mark("redis down")
        down_at = time.monotonic()
        redis.stop()  # SIGTERM: a clean shutdown
        time.sleep(3)
        redis.start()
        down_s = time.monotonic() - down_at
        load.mark("redis up")
        time.sleep(6)
        counts = load.stop()
        assert counts.bad == 0, (counts.failures, counts.errors)
        # Answered while down: 750 at 250/s, fewer on a loaded box (the load generator slows).
        assert load.marks["redis up"][0] - load.marks["redis down"][0] > 100
        assert trackerd.stop() == 0, trackerd.log()  # pushes its last changes
        wait_until(site.stats_settled, timeout=60, what="statistics flushed")
        assert before > 0 and site.flushed_batches() > before
        assert load.swarms.book.differences(site, members) == []
        record(
            "restart-redis",
            announces=counts.sent,
            answered=counts.ok,
            bad=counts.bad,
            while_down=load.marks["redis up"][0] - load.marks["redis down"][0],
            down_s=round(down_s, 1),
            slowest_s=round(load.slowest, 3),
            batches_before=before,
            batches_total=site.flushed_batches(),
            credited_bytes=sum(u + d for u, d in load.swarms.book.ledger.values()),
        )
    finally:
        redis.close()


def test_postgres_restart_during_a_flush_applies_the_batch_once(make_site, private_pg, tmp_path):
    site = make_site()
    seed = site.sitectl("seed-tracker", members=12, torrents=4)
    members = [m["id"] for m in seed["members"]]
    swarms = Swarms(seed, pairs=40, rng=random.Random(5))
    trackerd, port = site.trackerd()
    client = Announcer(port)
    for _ in range(600):
        swarms.step(client)
    release = tmp_path / "release-flush"
    worker = site.worker(pause="flush-before-commit", release=release)
    wait_until(lambda: site.unclaimed_credits() > 0, timeout=10, what="credits shared")
    site.send("tracker.flush_stats")
    site.wait_paused(worker)
    private_pg.stop("fast")  # the flush's transaction is rolled back, its connection cut
    try:
        for _ in range(300):  # trackerd answers from memory while the database is down
            swarms.step(client)
        release.touch()  # the flush goes on and fails: the batch stays in Redis
        wait_until(lambda: "OperationalError" in worker.log(200), timeout=30, what="flush failed")
    finally:
        private_pg.start()
    assert swarms.counts.bad == 0, (swarms.counts.failures, swarms.counts.errors)
    assert all(v == (0, 0) for v in site.ledgers().values())
    assert site.pending_batches() == 1
    client.close()
    assert trackerd.stop() == 0, trackerd.log()
    site.flush_until_settled()  # the same worker process, reconnected
    assert worker.alive()
    assert swarms.book.differences(site, members) == []
    record(
        "restart-postgres",
        announces=swarms.counts.sent,
        while_down=300,
        bad=swarms.counts.bad,
        batches_applied=site.flushed_batches(),
        credited_bytes=sum(u + d for u, d in swarms.book.ledger.values()),
    )
