"""trackerd's background thread while Redis is down: one warning when it goes away and one
info line when it is back, no traceback every sync period; the changes made meanwhile are
kept and pushed once it is back."""

from __future__ import annotations

import logging
import random
import socket
import uuid

import pytest
import redis

from tracker import announce_runtime
from tracker.announce.redis_sync import RedisPeerSync
from tracker.announce.store import MemoryPeerStore
from tracker.announce.tests.test_redis_sync import RULES, Clock, ann


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once closed


# The step ends by closing stale database connections, as the real thread does: a connection
# another test left open is checked there, which needs database access (without the mark, the
# test failed whenever it ran after one that opened a connection, e.g. test_flush_lock.py).
@pytest.mark.django_db
def test_redis_down_logs_one_warning_then_one_info_and_keeps_the_changes(caplog, settings):
    settings.PBTS_INPROCESS_FLUSH = False
    prefix = f"{settings.PBTS_REDIS_PREFIX}:downlog-{uuid.uuid4().hex[:8]}"
    clock = Clock()
    store = MemoryPeerStore(clock=clock, rng=random.Random(1), journal=True)
    down = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    rt = announce_runtime.Runtime(
        store=store, sync=RedisPeerSync(down, store, prefix=prefix, rules=RULES)
    )
    health = announce_runtime.RedisHealth()
    timers = announce_runtime._Timers(last_flush=0.0, last_reap=float("inf"))
    caplog.set_level(logging.INFO, logger="tracker.announce_runtime")
    for step in range(6):  # six sync periods with Redis down, an announce in each
        clock.now += 10
        store.announce(
            ann(1, b"a", uploaded=step * 100, event="" if step else "started"), rules=RULES
        )
        announce_runtime._background_step(rt, health, timers)
    records = [r for r in caplog.records if r.name == "tracker.announce_runtime"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]
    assert "Redis unreachable" in records[0].getMessage()

    up = redis.Redis.from_url(settings.REDIS_URL)
    down.connection_pool = up.connection_pool  # Redis is back, at the same address
    caplog.clear()
    try:
        for _ in range(3):
            announce_runtime._background_step(rt, health, timers)
        records = [r for r in caplog.records if r.name == "tracker.announce_runtime"]
        assert [(r.levelno, r.getMessage()) for r in records] == [
            (logging.INFO, "Redis reachable again: the kept peer changes are pushed")
        ]
        # The six announces made while Redis was down reached it: the peer's last state.
        assert len(up.hgetall(f"{prefix}:peers:1")) == 1
        loaded = RedisPeerSync(up, MemoryPeerStore(journal=True), prefix=prefix, rules=RULES)
        loaded.load()
        assert loaded.store.peer(1, (1, b"a".ljust(20, b"-"))).uploaded == 500
    finally:
        keys = list(up.scan_iter(match=f"{prefix}:*"))
        if keys:
            up.delete(*keys)
