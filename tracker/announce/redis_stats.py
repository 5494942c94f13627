"""The statistics flush's side of Redis: credit records, and claiming them in batches.

Pure code, no Django import. The batch script of ``redis_sync`` appends every applied batch's
credit records (:func:`pack_credit`) to ``P:credit-log`` as one list item, and adds the
torrents whose counts changed to ``P:dirty``. The flush (``tracker.announce_runtime``) claims
them with :class:`RedisStatsQueue` as :class:`~tracker.announce.records.StatsBatch` objects,
applies each batch in one database transaction, then forgets it.
"""

from __future__ import annotations

import struct
import uuid

import redis

from tracker.announce.records import Credit, StatsBatch, StatsKey

# member_id, torrent_id, uploaded, downloaded (bytes), seeding seconds, flags (Credit.flags);
# big-endian integers, exact beyond 2**53 (Lua's doubles never read them).
_CREDIT = struct.Struct(">IIQQIB")


def pack_credit(member_id: int, torrent_id: int, credit: Credit) -> bytes:
    """One 29-byte credit record: what ``credit`` (bytes, seconds, snatch and marks) gives
    ``member_id`` on ``torrent_id``."""
    return _CREDIT.pack(
        member_id,
        torrent_id,
        credit.uploaded,
        credit.downloaded,
        credit.seed_seconds,
        credit.flags,
    )


# A claim sent again under the same id (a client that retries after a lost reply) changes
# nothing: renaming the live keys onto the batch's again would replace the claimed credits
# with the ones pushed since (lost).
_CLAIM_SCRIPT = """
local p, batch = ARGV[1], ARGV[2]
if redis.call('SISMEMBER', p .. ':batches', batch) == 1 then return 1 end
local claimed = 0
if redis.call('EXISTS', p .. ':credit-log') == 1 then
  redis.call('RENAME', p .. ':credit-log', p .. ':batch:' .. batch .. ':credits')
  claimed = 1
end
if ARGV[3] == '1' and redis.call('EXISTS', p .. ':dirty') == 1 then
  redis.call('RENAME', p .. ':dirty', p .. ':batch:' .. batch .. ':dirty')
  claimed = 1
end
if claimed == 1 then redis.call('SADD', p .. ':batches', batch) end
return claimed
"""


class RedisStatsQueue:
    """Claims accumulated credits from Redis as :class:`StatsBatch` objects, once each.

    A claim renames the live keys under a batch id (new credits go to fresh keys at once);
    the batch stays in Redis until :meth:`done`, so a flush that died is found and re-run by
    :meth:`pending` (and the database's batch id makes that re-run a no-op if it had
    committed).
    """

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._claim = client.register_script(_CLAIM_SCRIPT)

    def claim(self, *, with_counts: bool = True) -> str | None:
        """Move the live credits, and the dirty set when ``with_counts``, under a new batch
        id; ``None`` if nothing was moved. Sent again under the same id (a retry after a lost
        reply), it moves nothing more."""
        batch_id = uuid.uuid4().hex
        return batch_id if self._claim(args=[self.prefix, batch_id, int(with_counts)]) else None

    def pending(self) -> list[str]:
        """Batch ids claimed but not marked done (oldest first is not guaranteed)."""
        return sorted(b.decode() for b in self.client.smembers(f"{self.prefix}:batches"))

    def read(self, batch_id: str) -> StatsBatch:
        """Load a claimed batch: credits per (member_id, torrent_id) and the current counts of
        the torrents that changed."""
        base = f"{self.prefix}:batch:{batch_id}"
        credits: dict[StatsKey, Credit] = {}
        get = credits.get
        for chunk in self.client.lrange(f"{base}:credits", 0, -1):
            for member, torrent, up, down, seed, flags in _CREDIT.iter_unpack(chunk):
                key = (member, torrent)
                credit = Credit.from_flags(up, down, seed, flags)
                total = get(key)
                if total is None:  # fresh from the record: kept as it is, not copied
                    credits[key] = credit
                else:
                    total.add(credit)
        dirty = [int(t) for t in self.client.smembers(f"{base}:dirty")]
        counts = {}
        if dirty:
            fields = [f"{t}:{k}" for t in dirty for k in "sl"]
            values = self.client.hmget(f"{self.prefix}:counts", fields)
            for i, torrent_id in enumerate(dirty):
                seeders, leechers = values[2 * i], values[2 * i + 1]
                counts[torrent_id] = (max(int(seeders or 0), 0), max(int(leechers or 0), 0))
        return StatsBatch(batch_id=batch_id, credits=credits, swarm_counts=counts)

    def done(self, batch_id: str) -> None:
        """Forget a batch the database has applied."""
        base = f"{self.prefix}:batch:{batch_id}"
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(f"{base}:credits", f"{base}:dirty")
        pipe.srem(f"{self.prefix}:batches", batch_id)
        pipe.execute()
