"""The statistics flush: announce credits -> PostgreSQL in bulk, once per batch.

One transaction per batch, one statement per table: the batch id row (``StatsFlush``, inserted
with ON CONFLICT DO NOTHING, so a re-run of an applied batch changes nothing), the member ledger,
the per-member-torrent history (upsert) and the torrent counters. Each statement reads the
batch's rows from a ``WITH v(...)`` clause (``core.bulksql``). Rows of members or torrents
deleted since the announce match nothing in the joins and are left out. The ledger is written
by its owner, ``reputation.services.ledger_credit_announced``, inside this transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.db import connection, transaction
from django.utils import timezone

from core.bulksql import saturating_add, values_cte
from reputation.services import ledger_credit_announced, ledger_flag_clamped
from tracker.announce.records import Credit, StatsBatch
from tracker.models import FreeleechToken

# A torrent's snatches: its members' completed histories (once per member and torrent).
_SNATCH_COUNT = (
    "(SELECT COUNT(*) FROM tracker_torrenthistory h"
    " WHERE h.torrent_id = tracker_torrent.id AND h.completed_at IS NOT NULL)"
)


def _insert_batch_row(cursor, batch: StatsBatch, members: int) -> bool:
    cursor.execute(
        "INSERT INTO tracker_statsflush (batch_id, members, torrents, created_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING",
        [batch.batch_id, members, len(batch.swarm_counts), timezone.now()],
    )
    return cursor.rowcount == 1


def _upsert_history(cursor, rows: list[tuple[int, int, int, int, int, int]]) -> None:
    """Add ``rows`` (member_id, torrent_id, uploaded, downloaded, seed_seconds, flags) to
    the history, one row per (member, torrent), in one statement."""
    with_v, params = values_cte(("member_id", "torrent_id", "up", "down", "seed", "flags"), rows)
    now = timezone.now()
    history = "tracker_torrenthistory"
    # flags: 1 snatched (completed_at, kept from the first), 2 leeching (leeched_at: the last
    # flush that saw the member leech this torrent; receipts need it of their downloader).
    cursor.execute(
        f"{with_v} INSERT INTO {history} (member_id, torrent_id, uploaded, downloaded,"
        " seed_seconds, completed_at, leeched_at, created_at, updated_at)"
        " SELECT v.member_id, v.torrent_id, v.up, v.down, v.seed,"
        " CASE WHEN (v.flags & 1) = 1 THEN %s END,"
        " CASE WHEN (v.flags & 2) = 2 THEN %s END, %s, %s FROM v"
        " JOIN tracker_member m ON m.id = v.member_id"
        " JOIN tracker_torrent t ON t.id = v.torrent_id"
        " WHERE true ON CONFLICT (member_id, torrent_id) DO UPDATE SET"
        f" uploaded = {saturating_add(history + '.uploaded', 'excluded.uploaded')},"
        f" downloaded = {saturating_add(history + '.downloaded', 'excluded.downloaded')},"
        f" seed_seconds = {saturating_add(history + '.seed_seconds', 'excluded.seed_seconds')},"
        f" completed_at = COALESCE({history}.completed_at, excluded.completed_at),"
        f" leeched_at = COALESCE(excluded.leeched_at, {history}.leeched_at),"
        " updated_at = excluded.updated_at",
        [*params, now, now, now, now],
    )


def _recount_snatches(cursor, snatched: set[int]) -> None:
    """``snatches`` of torrents with a new snatch, when the batch carries no counts."""
    with_v, params = values_cte(("torrent_id",), [(torrent_id,) for torrent_id in snatched])
    cursor.execute(
        f"{with_v} UPDATE tracker_torrent SET snatches = {_SNATCH_COUNT}"
        " FROM v WHERE tracker_torrent.id = v.torrent_id",
        params,
    )


def _update_torrents(cursor, counts: dict[int, tuple[int, int]], snatched: set[int]) -> None:
    """Seeders and leechers of the changed torrents; ``snatches`` is counted again only for
    torrents with a new snatch in this batch (the count is the history's, once per member).
    A row whose counts are already right is not rewritten: every rewrite of a torrent row
    touches each of its indexes (one holds ``seeders``, for browsing)."""
    rows = [
        (torrent_id, seeders, leechers, int(torrent_id in snatched))
        for torrent_id, (seeders, leechers) in counts.items()
    ]
    with_v, params = values_cte(("torrent_id", "seeders", "leechers", "snatched"), rows)
    cursor.execute(
        f"{with_v} UPDATE tracker_torrent SET seeders = v.seeders, leechers = v.leechers,"
        f" snatches = CASE WHEN v.snatched = 1 THEN {_SNATCH_COUNT}"
        " ELSE tracker_torrent.snatches END"
        " FROM v WHERE tracker_torrent.id = v.torrent_id AND (v.snatched = 1"
        " OR tracker_torrent.seeders <> v.seeders OR tracker_torrent.leechers <> v.leechers)",
        params,
    )


def _honour_freeleech_tokens(batch: StatsBatch) -> StatsBatch:
    """The batch with no download credited where the member holds a bonus-store freeleech
    token on the torrent that is active now (``FreeleechToken``, docs/bonus.md); one query,
    only when the batch credits a download. The caller's batch is left as it is (a copy)."""
    downloads = {key for key, credit in batch.credits.items() if credit.downloaded}
    if not downloads:
        return batch
    active = (
        set(
            FreeleechToken.objects.filter(
                member_id__in={m for m, _ in downloads},
                torrent_id__in={t for _, t in downloads},
                expires_at__gt=timezone.now(),
            ).values_list("member_id", "torrent_id")
        )
        & downloads
    )
    if not active:
        return batch
    credits = dict(batch.credits)
    for key in active:
        c = credits[key]
        credits[key] = Credit(c.uploaded, 0, c.seed_seconds, c.snatched, c.leeching, c.clamped)
    return replace(batch, credits=credits)


@dataclass(slots=True)
class _Columns:
    """What one pass over a batch's credits gives every statement: the history rows, each
    member's sums (uploaded, downloaded, seeding seconds) over its rows, the clamped members
    and the torrents with a new snatch."""

    rows: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    totals: dict[int, list[int]] = field(default_factory=dict)
    clamped: set[int] = field(default_factory=set)
    snatched: set[int] = field(default_factory=set)


def _columns(batch: StatsBatch) -> _Columns:
    out = _Columns()
    rows, totals, get = out.rows, out.totals, out.totals.get
    for (member_id, torrent_id), credit in batch.credits.items():
        up, down, seed = credit.uploaded, credit.downloaded, credit.seed_seconds
        rows.append((member_id, torrent_id, up, down, seed, credit.flags))
        total = get(member_id)
        if total is None:
            totals[member_id] = [up, down, seed]
        else:
            total[0] += up
            total[1] += down
            total[2] += seed
        if credit.clamped:
            out.clamped.add(member_id)
        if credit.snatched:
            out.snatched.add(torrent_id)
    return out


def stats_flush(*, batch: StatsBatch) -> bool:
    """Apply one batch of announce credits in one transaction.

    Args:
        batch: credits per (member_id, torrent_id) in bytes and seconds, and swarm counts.
            A download covered by an active bonus freeleech token is credited as 0.

    Returns:
        ``True`` if applied now, ``False`` if this batch id was applied before (a no-op).

    Raises:
        django.db.DatabaseError: the transaction failed and nothing was written; the caller
            keeps the batch and retries it.
    """
    batch = _honour_freeleech_tokens(batch)
    cols = _columns(batch)
    # Entries that only record presence (an announce that credited nothing) touch the history
    # row, not the ledger.
    credited = {member_id: row for member_id, row in cols.totals.items() if any(row)}
    with transaction.atomic(), connection.cursor() as cursor:
        if not _insert_batch_row(cursor, batch, len(cols.totals)):
            return False
        if credited:
            ledger_credit_announced(totals=credited)
        if cols.clamped:
            ledger_flag_clamped(member_ids=cols.clamped)
        if cols.rows:
            _upsert_history(cursor, cols.rows)
        # One statement on the torrents: counts (with the snatches of snatched ones, which
        # are among them), or, in a batch without counts, the snatches alone.
        if batch.swarm_counts:
            _update_torrents(cursor, batch.swarm_counts, cols.snatched)
        elif cols.snatched:
            _recount_snatches(cursor, cols.snatched)
    return True
