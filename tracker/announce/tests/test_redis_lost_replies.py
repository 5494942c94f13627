"""Redis calls whose reply is lost after the server applied them (a Redis restarted, a
connection cut): the peer push and the statistics claim are applied once.

The cause of issue 14's double count: trackerd's batch script was applied by Redis, the
connection dropped before its reply arrived (Redis stopping with SIGTERM exits without
writing the replies of the commands of its last event-loop turn, which its append-only file
keeps), and the same changes were sent again, by redis-py's own retry (10 retries on a
connection error by default) or by the journal put back after the failed sync. Applied a
second time, every change conflicts, and settling an older announce against the newer stored
state reads its lower counters as a client restart: the counters are credited again.

The connection below drops the reply of chosen commands after reading it, exactly once per
arming, against the real Redis.
"""

from __future__ import annotations

import random
import uuid

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from tracker.announce.records import add_credit
from tracker.announce.redis_stats import RedisStatsQueue
from tracker.announce.redis_sync import RedisPeerSync
from tracker.announce.store import MemoryPeerStore
from tracker.announce.tests.test_redis_sync import RULES, Clock, ann


class LosesReplies(redis.Connection):
    """A real connection that, while ``drop`` names commands, reads the reply of the next such
    command from Redis (so the server has applied it) and then fails as a cut connection."""

    drop: set[str] = set()
    dropped: list[str] = []

    def send_command(self, *args, **kwargs):
        self._last_command = str(args[0]).upper()
        return super().send_command(*args, **kwargs)

    def read_response(self, *args, **kwargs):
        response = super().read_response(*args, **kwargs)
        name = getattr(self, "_last_command", "")
        if name in LosesReplies.drop:
            LosesReplies.drop.discard(name)
            LosesReplies.dropped.append(name)
            self.disconnect()
            raise redis.ConnectionError("connection lost before the reply (test)")
        return response


def lossy_client(*, retries: bool) -> redis.Redis:
    """A client on the test Redis over :class:`LosesReplies`: one that sends a command again
    after a connection error (``redis.Redis()``'s default does, 10 times), or one that lets
    the error reach the caller (``redis.Redis.from_url``'s default, as ``announce_runtime``
    builds it)."""
    retry = Retry(NoBackoff(), 3 if retries else 0)
    pool = redis.ConnectionPool.from_url(
        settings.REDIS_URL, connection_class=LosesReplies, retry=retry
    )
    return redis.Redis(connection_pool=pool)


@pytest.fixture
def lossy():
    LosesReplies.drop = set()
    LosesReplies.dropped = []
    prefix = f"{settings.PBTS_REDIS_PREFIX}:lost-{uuid.uuid4().hex[:8]}"
    yield prefix
    plain = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(plain.scan_iter(match=f"{prefix}:*"))
    if keys:
        plain.delete(*keys)
    LosesReplies.drop = set()


def _credits(client: redis.Redis, prefix: str) -> dict:
    queue = RedisStatsQueue(client, prefix=prefix)
    queue.claim()
    total: dict = {}
    for batch_id in queue.pending():
        for key, credit in queue.read(batch_id).credits.items():
            add_credit(total, key, credit)
        queue.done(batch_id)
    return total


def _chain(store: MemoryPeerStore, clock: Clock, member: int, peer: bytes, steps: list[int]):
    """Announces of one leeching peer, 10 s apart, with ``uploaded`` taking each value."""
    for uploaded in steps:
        clock.now += 10
        event = "" if uploaded else "started"
        store.announce(
            ann(member, peer, uploaded=uploaded, downloaded=uploaded, event=event), rules=RULES
        )


@pytest.mark.parametrize("retries", [True, False], ids=["redis-py retries", "next sync"])
def test_a_push_whose_reply_is_lost_is_counted_once(lossy, retries):
    client = lossy_client(retries=retries)
    clock = Clock()
    store = MemoryPeerStore(clock=clock, rng=random.Random(1), journal=True)
    sync = RedisPeerSync(client, store, prefix=lossy, rules=RULES)
    _chain(store, clock, 1, b"a", [0])
    _chain(store, clock, 2, b"b", [0])
    sync.sync()
    # Several changes of one peer in one push: what a sync period holds under load.
    _chain(store, clock, 1, b"a", [1000, 2000, 3000])
    _chain(store, clock, 2, b"b", [500])
    LosesReplies.drop = {"EVALSHA"}
    if retries:
        sync.sync()  # redis-py sends the call again on a new connection
    else:
        with pytest.raises(redis.ConnectionError):
            sync.sync()
        _chain(store, clock, 1, b"a", [3500])  # an announce while the outcome is unknown
        sync.sync()  # the next period sends it again
    assert LosesReplies.dropped == ["EVALSHA"]
    plain = redis.Redis.from_url(settings.REDIS_URL)
    credits = _credits(plain, lossy)
    up_a = 3000 if retries else 3500
    assert (credits[(1, 1)].uploaded, credits[(1, 1)].downloaded) == (up_a, up_a)
    assert (credits[(2, 1)].uploaded, credits[(2, 1)].downloaded) == (500, 500)
    # Redis and this process agree on the peers' last states.
    for member, peer, up in ((1, b"a", up_a), (2, b"b", 500)):
        assert store.peer(1, (member, peer.ljust(20, b"-"))).uploaded == up
    fresh = RedisPeerSync(plain, MemoryPeerStore(journal=True), prefix=lossy, rules=RULES)
    fresh.load()
    assert fresh.store.peer(1, (1, b"a".ljust(20, b"-"))).uploaded == up_a


def test_a_claim_whose_reply_is_lost_keeps_every_credit(lossy):
    """redis-py sends a claim again after a lost reply: the credits pushed in between must not
    replace the claimed ones (RENAME onto the same batch key would)."""
    client = lossy_client(retries=True)
    plain = redis.Redis.from_url(settings.REDIS_URL)
    clock = Clock()
    store = MemoryPeerStore(clock=clock, rng=random.Random(1), journal=True)
    sync = RedisPeerSync(plain, store, prefix=lossy, rules=RULES)
    _chain(store, clock, 1, b"a", [0, 100])
    sync.sync()
    queue = RedisStatsQueue(client, prefix=lossy)

    # The claim is applied, its reply lost; before redis-py sends it again, more credit lands.
    original = LosesReplies.read_response

    def read_then_push(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except redis.ConnectionError:
            _chain(store, clock, 1, b"a", [250])
            sync.sync()
            raise

    LosesReplies.read_response = read_then_push
    try:
        LosesReplies.drop = {"EVALSHA"}
        batch_id = queue.claim()
    finally:
        LosesReplies.read_response = original
    assert LosesReplies.dropped == ["EVALSHA"] and batch_id is not None
    credits = _credits(plain, lossy)
    assert credits[(1, 1)].uploaded == 250


def test_an_older_announce_pushed_after_a_newer_one_elsewhere_credits_nothing_more(lossy):
    """A client's announce answered by process ``a`` (uploaded 100) and its next one by
    process ``b`` (uploaded 250), ``b`` pushing first: ``b``'s delta already counts the 100,
    so ``a``'s older change, now in conflict, adds nothing (not 100 more, as a counter read as
    a client restart would)."""
    plain = redis.Redis.from_url(settings.REDIS_URL)
    clock = Clock()
    a, b = (
        RedisPeerSync(
            plain,
            MemoryPeerStore(clock=clock, rng=random.Random(1), journal=True),
            prefix=lossy,
            rules=RULES,
        )
        for _ in range(2)
    )
    _chain(a.store, clock, 1, b"a", [0])
    a.sync()
    b.sync()
    _chain(a.store, clock, 1, b"a", [100])
    _chain(b.store, clock, 1, b"a", [250])
    b.sync()
    assert a.sync().conflicts == 1
    assert _credits(plain, lossy)[(1, 1)].uploaded == 250
    assert a.store.peer(1, (1, b"a".ljust(20, b"-"))).uploaded == 250
