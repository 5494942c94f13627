"""Sharing peer stores through Redis: write-behind batches and a replication log.

Each process (trackerd worker or web worker) answers announces from its own
:class:`~tracker.announce.store.MemoryPeerStore` and, every ``interval`` seconds, pushes the
journaled changes to Redis in ONE script call per batch, then pulls the changes other processes
pushed. No Django import.

Redis layout (``P`` is the key prefix):

- ``P:peers:<torrent_id>`` hash: field = the peer's 24-byte key (``records.peer_key``: member_id
  4 bytes big-endian, peer_id 20), value = packed :class:`PeerState` (:func:`pack_state`). The
  authoritative last state of every peer.
- ``P:counts`` hash: ``<torrent_id>:s`` / ``<torrent_id>:l`` seeders and leechers.
- ``P:credit-log`` list: what the statistics flush has not taken yet, one item per applied
  batch: concatenated 29-byte credit records (``redis_stats.pack_credit``: member_id,
  torrent_id, uploaded and downloaded bytes, seeding seconds, snatched flag). The flush claims
  them (``redis_stats.RedisStatsQueue``) and sums them per (member, torrent).
- ``P:dirty`` set: torrent ids whose counts changed since the last flush.
- ``P:push:<call id>`` list: the outcome of one script call (``"applied"`` then its conflicts),
  kept until the same process's next call acknowledges it (at most ``CALL_SECONDS``), so that
  a call sent again under the same id returns that outcome instead of applying twice.
- ``P:peerlog`` stream: one entry per applied batch, fields ``node`` and ``d`` (the changed
  peers as concatenated records: torrent_id, hash field, new packed state; see
  :func:`iter_log_records`), for the other processes to replay; entries older than
  ``LOG_SECONDS`` are trimmed (``MINID``).

Each batch costs Redis one small item per list and stream whatever its size, so the credit
accounting and replication cost little beyond the per-peer compare-and-set.

The batch script is a compare-and-set per peer: a change applies only if the stored state is
still the one this process based it on. A conflict (another process changed the peer in
between, e.g. the IPv6 leg of a dual-stack announce landing on another worker) is settled
again in Python with the same rule (:func:`~tracker.announce.rules.settle`) against the stored
state and retried, so a credit is never counted twice and the rule has one implementation.
State and credit go in the same atomic script run: a crash loses at most the unpushed batch,
and the next announce's delta (computed against the stored state) covers the gap.

Each script call is applied at most once. A call whose reply is lost (Redis stopping after it
applied the call and before it wrote the reply, a cut connection) has an unknown outcome: it is
kept and sent again, first, with the same call id, and the script answers a known id with the
outcome it recorded. Before, the changes went back to the journal and were pushed as new: the
stored states were already theirs, so every change conflicted, and an older announce settled
against its peer's newer stored state read the lower counters as a client restart and credited
them again (issue 14: 45 of 60 pairs about 7 % over after a Redis restart under load). For the
same reason a conflicting announce older than the stored state credits nothing: the stored
state already counts its bytes (:meth:`RedisPeerSync._resettle`).
"""

from __future__ import annotations

import logging
import struct
import threading
import uuid
from dataclasses import dataclass

import redis

from tracker.announce.records import (
    EVENT_BY_CODE,
    EVENT_CODE,
    Credit,
    PeerKey,
    PeerState,
    split_peer_key,
)
from tracker.announce.redis_stats import pack_credit
from tracker.announce.rules import Rules, settle
from tracker.announce.store import Change, MemoryPeerStore

log = logging.getLogger(__name__)

_STATE = struct.Struct(">QQQdBBB")  # uploaded, downloaded, left, at, event, len4, len6
MAX_RETRIES = 5
# History kept in the replication log; a process that falls further behind reloads.
LOG_SECONDS = 120
CHUNK = 2000  # changes per script call: bounds how long one call holds Redis
# How long a call's outcome is kept for a resend when no later call acknowledges it (a process
# that died with its last reply lost): longer than any Redis outage a resend could follow.
CALL_SECONDS = 7 * 24 * 3600

# ARGV: prefix, node, log retention (seconds), then the batch's changes packed back to back
# (see ``_pack_change``) in ONE argument, which Redis's Lua ``struct`` library walks (so
# redis-py encodes a few values per call, not one per change); then the call's id, the id of
# this process's previous call whose reply arrived ('' if none: its recorded outcome is
# deleted) and how long to keep this call's outcome (seconds). A known call id returns the
# recorded outcome and changes nothing. A change starts with its replication record (torrent
# id, hash field, new state), so an applied change's log record is a slice of the argument;
# its credit record (``pack_credit``) is passed through as bytes. The script adds one list item
# of concatenated credit records and one log entry per call.
_BATCH_SCRIPT = """
local p = ARGV[1]
if ARGV[6] ~= '' then redis.call('DEL', p .. ':push:' .. ARGV[6]) end
local outcome = p .. ':push:' .. ARGV[5]
local seen = redis.call('LRANGE', outcome, 1, -1)
if #seen > 0 or redis.call('EXISTS', outcome) == 1 then return seen end
local conflicts = {}
local log = {}
local credits = {}
-- seeder/leecher deltas and dirty torrents by torrent id, applied once per batch
local seeds, leeches, dirty = {}, {}, {}
local peers = p .. ':peers:'
local changes, pos, r = ARGV[4], 1, 0
while pos <= #changes do
  r = r + 1
  local at = pos
  local tid, field, new, dseed, dleech, snatch, base, credit
  tid, field, new, dseed, dleech, snatch, base, credit, pos =
    struct.unpack('>I4c24Bc0BBBBc0Bc0', changes, pos)
  local hkey = peers .. tid
  local cur = base
  if base == '' and new ~= '' then
    -- a new peer: one call sets it unless another process stored it first
    if redis.call('HSETNX', hkey, field, new) == 0 then cur = redis.call('HGET', hkey, field) end
  else
    cur = redis.call('HGET', hkey, field)
    if cur == false then cur = '' end
    if cur == base and new == '' then redis.call('HDEL', hkey, field) end
    if cur == base and new ~= '' then redis.call('HSET', hkey, field, new) end
  end
  if cur ~= base then
    conflicts[#conflicts + 1] = r
    conflicts[#conflicts + 1] = cur
  else
    dseed, dleech = dseed - 1, dleech - 1
    if dseed ~= 0 then seeds[tid] = (seeds[tid] or 0) + dseed end
    if dleech ~= 0 then leeches[tid] = (leeches[tid] or 0) + dleech end
    if dseed ~= 0 or dleech ~= 0 or snatch == 1 then dirty[tid] = true end
    if credit ~= '' then credits[#credits + 1] = credit end
    log[#log + 1] = string.sub(changes, at, at + 28 + #new)
  end
end
local counts = p .. ':counts'
for tid, delta in pairs(seeds) do
  if delta ~= 0 then redis.call('HINCRBY', counts, tid .. ':s', delta) end
end
for tid, delta in pairs(leeches) do
  if delta ~= 0 then redis.call('HINCRBY', counts, tid .. ':l', delta) end
end
local tids = {}
for tid in pairs(dirty) do tids[#tids + 1] = tid end
if #tids > 0 then redis.call('SADD', p .. ':dirty', unpack(tids)) end
if #credits > 0 then redis.call('RPUSH', p .. ':credit-log', table.concat(credits)) end
if #log > 0 then
  -- Keep LOG_SECONDS of history (stream ids are milliseconds): bounded in time, not entries.
  local now = redis.call('TIME')
  local oldest = (tonumber(now[1]) - tonumber(ARGV[3])) * 1000
  redis.call('XADD', p .. ':peerlog', 'MINID', '~', oldest, '*', 'node', ARGV[2],
    'd', table.concat(log))
end
redis.call('RPUSH', outcome, 'applied')
for i = 1, #conflicts, 1000 do
  redis.call('RPUSH', outcome, unpack(conflicts, i, math.min(i + 999, #conflicts)))
end
redis.call('EXPIRE', outcome, ARGV[7])
return conflicts
"""
# The log's position: {last id, entries ever added, entries trimmed} ({'0-0', 0, 0} if none).
_LOG_POSITION_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', 0, 0} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
return {f['last-generated-id'], f['entries-added'], f['entries-added'] - f['length']}
"""
_LOG_HEAD = struct.Struct(">I24sB")  # torrent_id, hash field, len(new state); then the state
_COUNTS = struct.Struct(">BBBB")  # dseed + 1, dleech + 1, snatch, len(base state)


_HEAD = struct.Struct(">II20sB")  # _LOG_HEAD with the hash field's two parts (peer_key)
_CREDIT_LENGTH = bytes((len(pack_credit(0, 0, Credit())),))  # the record's length prefix
_NO_RECORD = b"\x00"


def _pack_change(ch: Change) -> bytes:
    """One change as the batch script reads it: the replication record (torrent id, hash
    field, new packed state), the seeder and leecher count deltas, the snatch flag, the base
    state, then the credit record (length-prefixed; empty when there is nothing to record).
    Runs once per announce in the tracker process: the hash field is packed with the head."""
    prev, state, c = ch.prev, ch.state, ch.credit
    member_id, peer_id = ch.key
    new, base = pack_state(state), pack_state(prev)
    dseed = dleech = 1  # count deltas + 1 (the script reads unsigned bytes)
    if state is not None:
        if state.is_seeder:
            dseed += 1
        else:
            dleech += 1
    if prev is not None:
        if prev.is_seeder:
            dseed -= 1
        else:
            dleech -= 1
    # Even an empty credit: the member was seen in the swarm.
    if c or state is not None:
        record = _CREDIT_LENGTH + pack_credit(member_id, ch.torrent_id, c)
    else:
        record = _NO_RECORD
    return b"".join(
        (
            _HEAD.pack(ch.torrent_id, member_id, peer_id, len(new)),
            new,
            _COUNTS.pack(dseed, dleech, c.snatched, len(base)),
            base,
            record,
        )
    )


def iter_log_records(data: bytes):
    """Decode a log entry's ``d`` value: yields ``(torrent_id, field, packed state)``."""
    pos, end, head = 0, len(data), _LOG_HEAD.size
    while pos < end:
        torrent_id, field, size = _LOG_HEAD.unpack_from(data, pos)
        pos += head
        yield torrent_id, field, data[pos : pos + size]
        pos += size


def pack_state(state: PeerState | None) -> bytes:
    """Pack a peer state into bytes (b'' for none): 35 fixed bytes plus the addresses.
    Deterministic, so two processes' copies of one state compare equal."""
    if state is None:
        return b""
    head = _STATE.pack(
        state.uploaded,
        state.downloaded,
        state.left,
        state.announced_at,
        EVENT_CODE[state.event],
        len(state.compact4),
        len(state.compact6),
    )
    return head + state.compact4 + state.compact6


def unpack_state(key: PeerKey, data: bytes) -> PeerState | None:
    """Inverse of :func:`pack_state`; ``key`` gives member_id and peer_id."""
    if not data:
        return None
    up, down, left, at, event, n4, n6 = _STATE.unpack_from(data)
    pos = _STATE.size
    return PeerState(  # positional, as in rules.settle
        key[0],
        key[1],
        data[pos : pos + n4],
        data[pos + n4 : pos + n4 + n6],
        up,
        down,
        left,
        EVENT_BY_CODE[event],
        at,
    )


@dataclass(slots=True)
class _Call:
    """One script call: its id (sent again with it while its outcome is unknown), its
    changes and their packed form."""

    call_id: str
    changes: list[Change]
    payload: bytes


@dataclass(slots=True)
class SyncStats:
    """Counters of one :meth:`RedisPeerSync.sync` call."""

    pushed: int = 0
    conflicts: int = 0
    pulled: int = 0


class RedisPeerSync:
    """Shares one process's :class:`MemoryPeerStore` with the others through Redis.

    Args:
        client: a ``redis.Redis`` (bytes responses, ``decode_responses=False``).
        store: the process's store, created with ``journal=True``.
        prefix: the key prefix ``P``.
        rules: announce rules, used when a conflicting change is settled again.
    """

    def __init__(
        self, client: redis.Redis, store: MemoryPeerStore, *, prefix: str, rules: Rules
    ) -> None:
        self.client = client
        self.store = store
        self.prefix = prefix
        self.rules = rules
        self.node = uuid.uuid4().hex
        self._script = client.register_script(_BATCH_SCRIPT)
        self._position = client.register_script(_LOG_POSITION_SCRIPT)
        self._last_id = b"0-0"  # load() moves it to the log position of its snapshot
        self._read = 0  # log entries up to _last_id (entries are trimmed oldest first)
        self._lock = threading.Lock()
        self._unsure: _Call | None = None  # sent, outcome unknown: sent again first
        self._ack = ""  # the last call whose reply arrived (its recorded outcome is deleted)

    # --- start-up -----------------------------------------------------------------------

    def load(self) -> int:
        """Fill the store from Redis (every stored peer); returns how many peers were loaded.
        Replication starts from the log position taken before the load, so nothing is missed."""
        self._last_id, self._read, _ = self._position(keys=[f"{self.prefix}:peerlog"])
        loaded = 0
        prefix = f"{self.prefix}:peers:".encode()
        for hkey in self.client.scan_iter(match=prefix + b"*", count=1000):
            torrent_id = int(hkey[len(prefix) :])
            for field, value in self.client.hscan_iter(hkey, count=1000):
                key = split_peer_key(field)
                self.store.replicate(torrent_id, key, unpack_state(key, value))
                loaded += 1
        return loaded

    # --- push ---------------------------------------------------------------------------

    def _send(self, call: _Call) -> list:
        """Run the batch script for ``call``; a failure leaves it as the call to send again."""
        args = [
            self.prefix,
            self.node,
            LOG_SECONDS,
            call.payload,
            call.call_id,
            self._ack,
            CALL_SECONDS,
        ]
        try:
            result = self._script(args=args)
        except redis.RedisError:
            self._unsure = call
            raise
        self._unsure = None
        self._ack = call.call_id
        return result

    def _resettle(self, ch: Change, stored: PeerState | None) -> Change | None:
        """Settle a conflicting change again against the stored state; ``None`` if nothing
        is left to write (the stored state wins and is copied into this process).

        A change older than the stored state (a reap, or an announce made before the one the
        stored state records, e.g. the other leg of a dual-stack client answered by another
        process and pushed first) adds nothing: the stored state's own delta already covers
        its bytes, and settling it would read its lower counters as a client restart."""
        if ch.ann is None:  # a reap: only if the stored peer is still the stale one
            if stored is None or stored.announced_at > ch.prev.announced_at:
                self.store.replicate(ch.torrent_id, ch.key, stored)
                return None
            return Change(ch.torrent_id, ch.key, stored, None, Credit(), None, ch.now)
        if stored is not None and stored.announced_at > ch.now:
            self.store.replicate(ch.torrent_id, ch.key, stored)
            return None
        credit, state = settle(stored, ch.ann, now=max(ch.now, _at(stored)), rules=self.rules)
        self.store.replicate(ch.torrent_id, ch.key, state)
        return Change(ch.torrent_id, ch.key, stored, state, credit, ch.ann, ch.now)

    def push(self, changes: list[Change]) -> tuple[int, int]:
        """Write changes to Redis atomically, settling conflicts again; returns
        ``(applied, conflicts)``. A call whose outcome is unknown from an earlier push is sent
        again first, under its id (applied at most once).

        Raises:
            redis.RedisError: Redis is unreachable. The changes not sent yet are put back in
                the store's journal (ahead of newer ones) and the call that failed is kept to
                be sent again by the next push: nothing is lost, nothing counted twice.
        """
        applied = conflicts = 0
        sent = 0
        try:
            if self._unsure is not None:
                applied, conflicts = self._push_chunk([], call=self._unsure)
            while sent < len(changes):
                chunk = changes[sent : sent + CHUNK]
                sent += len(chunk)  # from here on the chunk is the failed call's, if any
                done = self._push_chunk(chunk)
                applied += done[0]
                conflicts += done[1]
        except redis.RedisError:
            self.store.restore_journal(changes[sent:])
            raise
        return applied, conflicts

    def _push_chunk(self, changes: list[Change], *, call: _Call | None = None) -> tuple[int, int]:
        applied = conflicts = 0
        for _ in range(MAX_RETRIES):
            if call is None:
                if not changes:
                    break
                call = _Call(uuid.uuid4().hex, changes, b"".join(map(_pack_change, changes)))
            result = self._send(call)
            changes, call = call.changes, None
            failed = {int(result[i]) - 1: result[i + 1] for i in range(0, len(result), 2)}
            applied += len(changes) - len(failed)
            conflicts += len(failed)
            retry = []
            for index, stored_bytes in failed.items():
                ch = changes[index]
                again = self._resettle(ch, unpack_state(ch.key, stored_bytes))
                if again is not None:
                    retry.append(again)
            changes = retry
        if changes:
            log.warning("dropping %d peer changes after %d conflicts", len(changes), MAX_RETRIES)
        return applied, conflicts

    # --- pull ---------------------------------------------------------------------------

    def pull(self, *, block_ms: int | None = None) -> int:
        """Replay other processes' batches from the log into the store; returns peers applied.
        If entries this process had not read were trimmed (it fell more than ``LOG_SECONDS``
        behind), it reloads every peer instead."""
        key = f"{self.prefix}:peerlog"
        if self._missed_entries(key):
            log.warning("replication log trimmed past this process's position; reloading")
            return self.load()
        entries = self.client.xread({key: self._last_id}, count=1000, block=block_ms)
        applied = 0
        for _stream, items in entries or []:
            for entry_id, fields in items:
                self._last_id = entry_id
                self._read += 1
                applied += self._replay(fields)
        return applied

    def _missed_entries(self, key: str) -> bool:
        trimmed = self._position(keys=[key])[2]
        return trimmed > self._read

    def _replay(self, fields: dict[bytes, bytes]) -> int:
        if fields.get(b"node") == self.node.encode():
            return 0
        count = 0
        for torrent_id, field, value in iter_log_records(fields.get(b"d", b"")):
            key = split_peer_key(field)
            self.store.replicate(torrent_id, key, unpack_state(key, value))
            count += 1
        return count

    def sync(self) -> SyncStats:
        """Push this process's journal, then pull the others' changes. A failed push keeps
        what it could not send (:meth:`push`: nothing lost, nothing counted twice).

        Raises:
            redis.RedisError: Redis is unreachable.
        """
        with self._lock:
            stats = SyncStats()
            stats.pushed, stats.conflicts = self.push(self.store.take_journal())
            stats.pulled = self.pull()
            return stats


def _at(state: PeerState | None) -> float:
    return 0.0 if state is None else state.announced_at
