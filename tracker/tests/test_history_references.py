"""The history's references to members and torrents on PostgreSQL (migration 0014): checked
once per statement by triggers instead of per row by foreign keys, with the foreign keys'
meaning: no history row without its member and torrent, referenced rows locked until the
inserting transaction ends, deleting or truncating a referenced member or torrent refused."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from tracker.announce.records import Credit, StatsBatch
from tracker.models import Member, Torrent, TorrentHistory
from tracker.services.stats import stats_flush
from tracker.tests.db_helpers import other_session
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

MISSING = 2**40  # an id no row has

INSERT = (
    "INSERT INTO tracker_torrenthistory (member_id, torrent_id, uploaded, downloaded,"
    " seed_seconds, created_at, updated_at) VALUES (%s, %s, 0, 0, 0, now(), now())"
)


@pytest.fixture
def pair(db):
    member = MemberFactory()
    return member, upload_torrent(member)


def test_the_foreign_keys_are_replaced_by_triggers(pair):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'tracker_torrenthistory'::regclass"
            " AND confrelid IN ('tracker_member'::regclass, 'tracker_torrent'::regclass)"
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN"
            " ('tracker_torrenthistory'::regclass, 'tracker_member'::regclass,"
            " 'tracker_torrent'::regclass) ORDER BY tgname"
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "tracker_history_references",
            "tracker_history_references_update",
            "tracker_member_history",
            "tracker_member_history_truncate",
            "tracker_torrent_history",
            "tracker_torrent_history_truncate",
        ]


@pytest.mark.parametrize("missing", ["member", "torrent"])
def test_a_row_of_a_missing_member_or_torrent_is_refused(pair, missing):
    member, torrent = pair
    ids = (MISSING, torrent.pk) if missing == "member" else (member.pk, MISSING)
    with (
        pytest.raises(IntegrityError, match=f"references a {missing} that does not exist"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT, list(ids))
    with pytest.raises(IntegrityError, match=f"references a {missing}"), transaction.atomic():
        TorrentHistory.objects.create(member_id=ids[0], torrent_id=ids[1])
    assert not TorrentHistory.objects.exists()


def test_one_missing_reference_refuses_the_whole_statement(pair):
    member, torrent = pair
    other = upload_torrent(member, name="other")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracker_torrenthistory (member_id, torrent_id, uploaded,"
            " downloaded, seed_seconds, created_at, updated_at)"
            " SELECT m, t, 0, 0, 0, now(), now() FROM unnest(%s::bigint[], %s::bigint[])"
            " AS v(m, t)",
            [[member.pk, member.pk, MISSING], [torrent.pk, other.pk, other.pk]],
        )
    assert not TorrentHistory.objects.exists()


@pytest.mark.parametrize("missing", ["member", "torrent"])
def test_moving_a_row_to_a_missing_member_or_torrent_is_refused(pair, missing):
    member, torrent = pair
    TorrentHistory.objects.create(member=member, torrent=torrent)
    with pytest.raises(IntegrityError, match=f"references a {missing}"), transaction.atomic():
        TorrentHistory.objects.update(**{f"{missing}_id": MISSING})
    TorrentHistory.objects.update(uploaded=5)  # other columns: no check, no error


@pytest.mark.parametrize("table", ["tracker_member", "tracker_torrent"])
def test_deleting_a_referenced_member_or_torrent_fails_at_commit(pair, table):
    member, torrent = pair
    TorrentHistory.objects.create(member=member, torrent=torrent)
    row = member.pk if table == "tracker_member" else torrent.pk
    trigger = "tracker_member_history" if table == "tracker_member" else "tracker_torrent_history"
    with (
        pytest.raises(IntegrityError, match="still referenced"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row])
        cursor.execute(f"SET CONSTRAINTS {trigger} IMMEDIATE")  # what COMMIT does
    assert TorrentHistory.objects.count() == 1


def test_django_deletes_history_with_its_member_and_torrent(pair):
    member, torrent = pair
    other = MemberFactory()
    TorrentHistory.objects.create(member=member, torrent=torrent)
    TorrentHistory.objects.create(member=other, torrent=torrent)
    Member.objects.filter(pk=member.pk).delete()
    Torrent.objects.filter(pk=torrent.pk).delete()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # every deferred check runs now
    assert not TorrentHistory.objects.exists()


@pytest.mark.django_db(transaction=True)  # TRUNCATE refuses pending deferred checks
def test_truncating_referenced_torrents_is_refused():
    member = MemberFactory()
    torrent = upload_torrent(member)
    TorrentHistory.objects.create(member=member, torrent=torrent)
    with (
        pytest.raises(IntegrityError, match="cannot truncate"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE tracker_torrent CASCADE")
    assert Torrent.objects.filter(pk=torrent.pk).exists()


def test_the_flush_still_leaves_out_rows_of_deleted_members(pair):
    member, torrent = pair
    gone = MemberFactory()
    gone_id = gone.pk
    gone.delete()
    batch = StatsBatch(
        credits={
            (member.pk, torrent.pk): Credit(1, 2, 3, True),
            (gone_id, torrent.pk): Credit(4, 5, 6, True),
        }
    )
    assert stats_flush(batch=batch) is True
    assert list(TorrentHistory.objects.values_list("member_id", "uploaded")) == [(member.pk, 1)]


@pytest.mark.django_db(transaction=True)
def test_an_insert_locks_its_member_until_it_commits_and_a_waiting_delete_then_fails():
    member = MemberFactory()
    torrent = upload_torrent(member)
    flush, deleter = other_session(), other_session()
    outcome: list[BaseException | None] = []
    try:
        flush.execute(INSERT, [member.pk, torrent.pk])  # the statement's rows lock the member
        deleter.execute("SET lock_timeout = '10s'")
        deleter.execute("SET CONSTRAINTS tracker_member_history IMMEDIATE")

        def delete() -> None:
            try:
                deleter.execute("DELETE FROM tracker_member WHERE id = %s", [member.pk])
                outcome.append(None)
            except psycopg.Error as exc:
                outcome.append(exc)

        waiting = threading.Thread(target=delete)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive()  # blocked by the insert's FOR KEY SHARE lock
        flush.commit()
        waiting.join(timeout=10)
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.ForeignKeyViolation)
        deleter.rollback()
        assert TorrentHistory.objects.filter(member_id=member.pk).count() == 1
    finally:
        flush.close()
        deleter.close()
