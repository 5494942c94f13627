"""Migration 0007 (stored .torrent files lose the member keys) on rows it cannot rewrite: a row
with empty metainfo, one that is not bencode and one without an ``info`` dictionary are left
as they are, and the migration goes on to rewrite the others (before, an empty row stopped
it with ``ValueError: stream underflow``)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from fastbencode import bencode

BEFORE = [("tracker", "0006_rendered_markdown")]
AFTER = [("tracker", "0007_metainfo_without_member_keys")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_0007_leaves_rows_it_cannot_read_and_rewrites_the_others():
    info = {b"name": b"a.bin", b"length": 1, b"piece length": 16384, b"pieces": bytes(20)}
    good = bencode({b"announce": b"http://x/announce", b"comment": b"c", b"info": info})
    stored = {
        "empty": b"",
        "garbage": b"not bencode",
        "no-info": bencode({b"announce": b"http://x/announce"}),
        "good": good,
    }
    try:
        apps = _migrate(BEFORE)
        Member = apps.get_model("tracker", "Member")
        Category = apps.get_model("tracker", "Category")
        Torrent = apps.get_model("tracker", "Torrent")
        uploader = Member.objects.create(username="old-uploader", passkey="p" * 32)
        category = Category.objects.create(name="Old", slug="old")
        for name, metainfo in stored.items():
            info_hash = hashlib.sha1(bencode(info) if name == "good" else name.encode())
            Torrent.objects.create(
                name=name,
                info_hash=info_hash.hexdigest(),
                category=category,
                uploader=uploader,
                metainfo=metainfo,
                size=1,
                piece_length=16384,
                piece_count=1,
                file_count=1,
            )
        apps = _migrate(AFTER)  # raised ValueError on the empty row before the fix
        Torrent = apps.get_model("tracker", "Torrent")
        after = {t.name: bytes(t.metainfo) for t in Torrent.objects.all()}
        assert {k: after[k] for k in ("empty", "garbage", "no-info")} == {
            k: stored[k] for k in ("empty", "garbage", "no-info")
        }
        assert after["good"] == bencode({b"info": info})  # announce and comment dropped
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
