"""The statistics flush (``tracker.services.stats``) on PostgreSQL and on the embedded default's
SQLite: one statement per table, vanished rows left out, sums that saturate, re-runs no-ops."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from core.bulksql import MAX_BIGINT, values_cte
from reputation.models import Ledger
from tracker import announce_runtime
from tracker.announce.records import Credit, StatsBatch
from tracker.models import Member, Torrent, TorrentHistory
from tracker.services.stats import stats_flush
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_rows_of_deleted_members_and_torrents_are_left_out_and_the_rest_applied():
    kept, gone = MemberFactory(), MemberFactory()
    torrent, deleted = upload_torrent(kept, name="kept"), upload_torrent(kept, name="gone")
    gone_id, deleted_id = gone.pk, deleted.pk
    Member.objects.filter(pk=gone_id).delete()
    Torrent.objects.filter(pk=deleted_id).delete()
    batch = StatsBatch(
        credits={
            (kept.pk, torrent.pk): Credit(100, 50, 60, True),
            (gone_id, torrent.pk): Credit(7, 7, 7, True),
            (kept.pk, deleted_id): Credit(9, 9, 9, False),
        },
        swarm_counts={torrent.pk: (1, 2), deleted_id: (5, 5)},
    )
    assert stats_flush(batch=batch) is True
    history = TorrentHistory.objects.get()
    assert (history.member_id, history.torrent_id) == (kept.pk, torrent.pk)
    assert (history.uploaded, history.downloaded, history.seed_seconds) == (100, 50, 60)
    ledger = Ledger.objects.get(member=kept)
    # The ledger takes the member's sum over every row, the vanished torrent's row included.
    assert (ledger.uploaded, ledger.downloaded, ledger.seeding_seconds) == (109, 59, 69)
    torrent.refresh_from_db()
    assert (torrent.seeders, torrent.leechers, torrent.snatches) == (1, 2, 1)


def test_absurd_counters_saturate_at_the_largest_bigint_instead_of_failing_the_flush():
    member = MemberFactory()
    torrent = upload_torrent(member)
    huge = 2**64 - 2  # a claimed 2**63 - 1 bytes, doubled on a double-upload torrent
    for batch_id in ("first", "second"):
        batch = StatsBatch(
            batch_id=batch_id, credits={(member.pk, torrent.pk): Credit(huge, huge, 5, False)}
        )
        assert stats_flush(batch=batch) is True
    assert stats_flush(batch=StatsBatch(batch_id="second", credits={})) is False  # applied
    ledger = Ledger.objects.get(member=member)
    history = TorrentHistory.objects.get()
    assert ledger.uploaded == ledger.downloaded == history.uploaded == MAX_BIGINT
    assert (ledger.seeding_seconds, history.seed_seconds) == (10, 10)


SQLITE_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tracker.announce.records import Credit, StatsBatch
from tracker.models import Member, TorrentHistory
from tracker.services.stats import stats_flush
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from reputation.models import Ledger
member = MemberFactory()
torrent = upload_torrent(member)
gone = MemberFactory()
gone_id = gone.pk
Member.objects.filter(pk=gone_id).delete()
credits = {
    (member.pk, torrent.pk): Credit(2**64 - 2, 40, 60, True),
    (gone_id, torrent.pk): Credit(1, 1, 1, False),
}
counts = {torrent.pk: (1, 0)}
first = stats_flush(batch=StatsBatch(batch_id="b1", credits=credits, swarm_counts=counts))
again = stats_flush(batch=StatsBatch(batch_id="b1", credits=credits))
other = MemberFactory()
# A batch without counts (they are due every PBTS_COUNTS_SECONDS): the snatch alone is counted.
snatch_only = StatsBatch(batch_id="b2", credits={(other.pk, torrent.pk): Credit(0, 0, 0, True)})
third = stats_flush(batch=snatch_only)
ledger = Ledger.objects.get(member=member)
fields = ("member_id", "uploaded", "downloaded", "seed_seconds")
history = list(TorrentHistory.objects.values_list(*fields))
torrent.refresh_from_db()
print(json.dumps({
    "first": first, "again": again, "third": third, "member": member.pk,
    "ledger": [ledger.uploaded, ledger.downloaded, ledger.seeding_seconds],
    "history": history, "torrent": [torrent.seeders, torrent.leechers, torrent.snatches],
}))
"""


def test_the_same_flush_runs_on_the_embedded_default_sqlite(tmp_path):
    drop = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PBTS_REDIS_PREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["first"], out["again"], out["third"]) == (True, False, True)
    assert out["ledger"] == [MAX_BIGINT, 40, 60]
    assert [out["member"], MAX_BIGINT, 40, 60] in out["history"]
    assert len(out["history"]) == 2
    assert out["torrent"] == [1, 0, 2]  # counts from b1; snatches recounted by b2


def _row_version(torrent: Torrent) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM tracker_torrent WHERE id = %s", [torrent.pk])
        return cursor.fetchone()[0]


def test_a_torrent_whose_counts_did_not_change_is_not_rewritten():
    member = MemberFactory()
    torrent = upload_torrent(member)
    stats_flush(batch=StatsBatch(batch_id="a", swarm_counts={torrent.pk: (2, 3)}))
    before = _row_version(torrent)
    stats_flush(batch=StatsBatch(batch_id="b", swarm_counts={torrent.pk: (2, 3)}))
    assert _row_version(torrent) == before  # same counts: the row was left alone
    stats_flush(batch=StatsBatch(batch_id="c", swarm_counts={torrent.pk: (2, 4)}))
    assert _row_version(torrent) != before
    torrent.refresh_from_db()
    assert (torrent.seeders, torrent.leechers) == (2, 4)


def test_values_cte_sends_a_column_as_one_literal_and_clamps_only_what_exceeds():
    rows = [(1, MAX_BIGINT + 5, True), (2, 7, False)]
    with_v, params = values_cte(("a", "b", "c"), rows)
    assert params == ["{1,2}", f"{{{MAX_BIGINT},7}}", "{1,0}"]
    with connection.cursor() as cursor:
        cursor.execute(f"{with_v} SELECT a, b, c FROM v ORDER BY a", params)
        assert cursor.fetchall() == [(1, MAX_BIGINT, 1), (2, 7, 0)]
    with pytest.raises(TypeError):
        values_cte(("a",), [(1.5,)])


def test_flush_now_pauses_the_cyclic_collector_and_restores_it(monkeypatch):
    seen = []

    def flush(rt):
        seen.append(gc.isenabled())
        if len(seen) == 3:
            raise RuntimeError("the database is down")
        return True

    monkeypatch.setattr(announce_runtime, "_flush_redis", flush)
    monkeypatch.setattr(announce_runtime, "_flush_memory", flush)
    assert gc.isenabled()
    assert announce_runtime.flush_now() is True
    assert seen == [False] and gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        announce_runtime.flush_now()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError):
        announce_runtime.flush_now()
    assert gc.isenabled()  # back on after a failed flush too
