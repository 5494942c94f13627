"""Stored .torrent files lose every top-level key that sorts before or at ``comment``.

Downloads are now spliced (``tracker.metainfo.encode_for_member``): the member's ``announce``,
``announce-list`` and ``comment`` are written, then the stored bytes are copied after their
opening ``d``, which needs a stored file whose keys all sort after ``comment``. Uploads are
stored that way (``tracker.metainfo.rewrite``); this rewrites the rows stored before. Only
top-level keys change: the ``info`` bytes, and so the info_hash, stay as they are (checked).
A row whose metainfo is empty, not bencode or without an ``info`` dictionary is left as it is
(there is nothing to rewrite; before, such a row stopped the migration).
"""

import hashlib

from django.db import migrations

FIRST_KEPT_AFTER = b"comment"


def _decoded(metainfo) -> dict | None:
    """The stored file as a dictionary, or ``None`` if it is empty, not bencode, or has no
    ``info`` dictionary."""
    from fastbencode import bdecode

    raw = bytes(metainfo or b"")
    if not raw:
        return None
    try:
        data = bdecode(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get(b"info"), dict):
        return None
    return data


def drop_member_keys(apps, schema_editor):
    from fastbencode import bencode

    Torrent = apps.get_model("tracker", "Torrent")
    for torrent in Torrent.objects.only("pk", "info_hash", "metainfo").iterator(chunk_size=100):
        data = _decoded(torrent.metainfo)
        if data is None:
            continue
        kept = {k: v for k, v in data.items() if k > FIRST_KEPT_AFTER and k != b"nodes"}
        if len(kept) == len(data):
            continue
        if hashlib.sha1(bencode(kept[b"info"])).hexdigest() != torrent.info_hash:
            raise RuntimeError(f"torrent {torrent.pk}: the info_hash would change")
        Torrent.objects.filter(pk=torrent.pk).update(metainfo=bencode(kept))


class Migration(migrations.Migration):

    dependencies = [
        ("tracker", "0006_rendered_markdown"),
    ]

    operations = [
        migrations.RunPython(drop_member_keys, migrations.RunPython.noop),
    ]
