"""Stored .torrent files lose every top-level key that sorts before or at ``comment``.

Downloads are now spliced (``tracker.metainfo.encode_for_member``): the member's ``announce``,
``announce-list`` and ``comment`` are written, then the stored bytes are copied after their
opening ``d``, which needs a stored file whose keys all sort after ``comment``. Uploads are
stored that way (``tracker.metainfo.rewrite``); this rewrites the rows stored before. Only
top-level keys change: the ``info`` bytes, and so the info_hash, stay as they are (checked).
"""

import hashlib

from django.db import migrations

FIRST_KEPT_AFTER = b"comment"


def drop_member_keys(apps, schema_editor):
    from fastbencode import bdecode, bencode

    Torrent = apps.get_model("tracker", "Torrent")
    for torrent in Torrent.objects.only("pk", "info_hash", "metainfo").iterator(chunk_size=100):
        data = bdecode(bytes(torrent.metainfo))
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
