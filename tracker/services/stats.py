"""The statistics flush: announce credits -> PostgreSQL in bulk, once per batch.

One transaction per batch, one statement per table: the batch id row (``StatsFlush``, inserted
with ON CONFLICT DO NOTHING, so a re-run of an applied batch changes nothing), the member ledger,
the per-member-torrent history (upsert) and the torrent counters. The SQL is standard enough for
both PostgreSQL and SQLite >= 3.33 (the embedded default).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection, transaction
from django.utils import timezone

from tracker.announce.store import StatsBatch
from tracker.models import Member, Torrent


def _values(rows: list[tuple], width: int) -> tuple[str, list]:
    row_sql = "(" + ", ".join(["CAST(%s AS BIGINT)"] * width) + ")"
    params = [value for row in rows for value in row]
    return ", ".join([row_sql] * len(rows)), params


def _insert_batch_row(cursor, batch: StatsBatch, members: int) -> bool:
    cursor.execute(
        "INSERT INTO tracker_statsflush (batch_id, members, torrents, created_at)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (batch_id) DO NOTHING",
        [batch.batch_id, members, len(batch.swarm_counts), timezone.now()],
    )
    return cursor.rowcount == 1


def _update_ledgers(cursor, totals: dict[int, list[int]]) -> None:
    rows = [(member_id, up, down, seed) for member_id, (up, down, seed) in totals.items()]
    values, params = _values(rows, 4)
    cursor.execute(
        "UPDATE reputation_ledger SET uploaded = reputation_ledger.uploaded + v.column2,"
        " downloaded = reputation_ledger.downloaded + v.column3,"
        " seeding_seconds = reputation_ledger.seeding_seconds + v.column4,"
        " updated_at = %s"
        f" FROM (VALUES {values}) AS v WHERE reputation_ledger.member_id = v.column1",
        [timezone.now(), *params],
    )


def _upsert_history(cursor, batch: StatsBatch) -> None:
    now = timezone.now()
    rows = []
    for (member_id, torrent_id), (up, down, seed, snatched) in batch.credits.items():
        rows.append((member_id, torrent_id, up, down, seed, now if snatched else None, now, now))
    one = "(%s, %s, %s, %s, %s, %s, %s, %s)"
    cursor.execute(
        "INSERT INTO tracker_torrenthistory (member_id, torrent_id, uploaded, downloaded,"
        " seed_seconds, completed_at, created_at, updated_at)"
        f" VALUES {', '.join([one] * len(rows))}"
        " ON CONFLICT (member_id, torrent_id) DO UPDATE SET"
        " uploaded = tracker_torrenthistory.uploaded + excluded.uploaded,"
        " downloaded = tracker_torrenthistory.downloaded + excluded.downloaded,"
        " seed_seconds = tracker_torrenthistory.seed_seconds + excluded.seed_seconds,"
        " completed_at = COALESCE(tracker_torrenthistory.completed_at, excluded.completed_at),"
        " updated_at = excluded.updated_at",
        [value for row in rows for value in row],
    )


def _update_torrents(cursor, counts: dict[int, tuple[int, int]], snatched: set[int]) -> None:
    """Seeders and leechers of the changed torrents; ``snatches`` is counted again only for
    torrents with a new snatch in this batch (the count is the history's, once per member)."""
    rows = [
        (torrent_id, seeders, leechers, int(torrent_id in snatched))
        for torrent_id, (seeders, leechers) in counts.items()
    ]
    values, params = _values(rows, 4)
    cursor.execute(
        "UPDATE tracker_torrent SET seeders = v.column2, leechers = v.column3,"
        " snatches = CASE WHEN v.column4 = 1 THEN (SELECT COUNT(*) FROM tracker_torrenthistory h"
        " WHERE h.torrent_id = tracker_torrent.id AND h.completed_at IS NOT NULL)"
        " ELSE tracker_torrent.snatches END"
        f" FROM (VALUES {values}) AS v WHERE tracker_torrent.id = v.column1",
        params,
    )


def _drop_vanished(batch: StatsBatch) -> None:
    """Leave out credits of members or torrents deleted since the announce (hard deletes by
    the owner), so one vanished row cannot block every later flush."""
    member_ids = {m for m, _ in batch.credits}
    torrent_ids = {t for _, t in batch.credits} | set(batch.swarm_counts)
    members = set(Member.objects.filter(id__in=member_ids).values_list("id", flat=True))
    torrents = set(Torrent.objects.filter(id__in=torrent_ids).values_list("id", flat=True))
    batch.credits = {
        key: row for key, row in batch.credits.items() if key[0] in members and key[1] in torrents
    }
    batch.swarm_counts = {t: c for t, c in batch.swarm_counts.items() if t in torrents}


def stats_flush(*, batch: StatsBatch) -> bool:
    """Apply one batch of announce credits in one transaction.

    Args:
        batch: credits per (member_id, torrent_id) in bytes and seconds, and swarm counts.

    Returns:
        ``True`` if applied now, ``False`` if this batch id was applied before (a no-op).

    Raises:
        django.db.DatabaseError: the transaction failed and nothing was written; the caller
            keeps the batch and retries it.
    """
    _drop_vanished(batch)
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (member_id, _), (up, down, seed, _snatched) in batch.credits.items():
        row = totals[member_id]
        row[0] += up
        row[1] += down
        row[2] += seed
    # Entries that only record presence (an announce that credited nothing) touch the history
    # row, not the ledger.
    credited = {member_id: row for member_id, row in totals.items() if any(row)}
    with transaction.atomic(), connection.cursor() as cursor:
        if not _insert_batch_row(cursor, batch, len(totals)):
            return False
        if credited:
            _update_ledgers(cursor, credited)
        if batch.credits:
            _upsert_history(cursor, batch)
        if batch.swarm_counts:
            snatched = {t for (_, t), row in batch.credits.items() if row[3]}
            _update_torrents(cursor, batch.swarm_counts, snatched)
    return True
