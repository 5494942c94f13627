"""The site the harness measures: Django on a temporary SQLite file (``experiments.settings``),
its tables, and the few rows the measurements need (an approved torrent, two members with
registered keys).

Requests go through ``django.test.Client``: the whole stack (middleware, URL routing, DRF
authentication by API token, the real views and services) without a network socket.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastbencode import bencode


@dataclass
class Workspace:
    """The temporary folder holding the harness's SQLite file; removed by :meth:`close`."""

    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / "experiments.sqlite3"

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def django_start() -> Workspace:
    """Point Django at a fresh temporary SQLite file, set it up and create the tables.

    Must run before anything imports Django models. The settings module and the database are
    forced (a ``DJANGO_SETTINGS_MODULE``, ``DATABASE_URL`` or ``.env`` of the developer is
    ignored), so a run never reads or writes the developer's data.
    """
    work = Workspace(Path(tempfile.mkdtemp(prefix="pbts-experiments-")))
    os.environ["PBTS_EXPERIMENTS_DB"] = str(work.database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "experiments.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, run_syncdb=True, interactive=False)
    return work


PIECE_LENGTH = 262144
"""Bytes per piece of the fixture torrent."""


def torrent_bytes(*, piece_length: int = PIECE_LENGTH, pieces: int = 4096) -> bytes:
    """A single-file v1 .torrent (BEP 3) of ``pieces`` pieces with random hashes (unique)."""
    info = {
        b"name": f"experiments-{secrets.token_hex(4)}.bin".encode(),
        b"piece length": piece_length,
        b"length": piece_length * pieces - 1000,
        b"pieces": os.urandom(20 * pieces),
    }
    return bencode({b"announce": b"http://example.invalid/announce", b"info": info})


@dataclass
class Fixtures:
    """Rows the measurements use: an approved torrent's info_hash, piece count and piece
    length (bytes), and the uploader's API token."""

    info_hash: str
    piece_count: int
    piece_length: int
    token: str


def fixtures_create() -> Fixtures:
    """Create an uploader and upload an approved torrent through the site's services.

    Raises:
        RuntimeError: the upload was not approved (the harness settings force automatic
            approval; anything else is a bug worth stopping for).
    """
    from tracker.models import TorrentStatus
    from tracker.services.members import member_api_token, member_create
    from tracker.services.torrents import torrent_upload

    uploader = member_create(username="experiments-uploader", is_staff=True)
    torrent = torrent_upload(uploader=uploader, data=torrent_bytes())
    if torrent.status != TorrentStatus.APPROVED:
        raise RuntimeError(f"the experiments torrent is {torrent.status}, not approved")
    return Fixtures(
        info_hash=torrent.info_hash,
        piece_count=torrent.piece_count,
        piece_length=torrent.piece_length,
        token=member_api_token(uploader),
    )


def api_client(token: str) -> Any:
    """A ``django.test.Client`` sending ``Authorization: Token <token>`` on every request."""
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def post_json(client: Any, path: str, body: dict[str, Any], *, expect: int) -> dict[str, Any]:
    """POST ``body`` as JSON and return the decoded reply.

    Raises:
        RuntimeError: the status is not ``expect`` (the reply's first 300 characters are
            quoted; it never holds a secret: requests carry public keys only).
    """
    response = client.post(path, body, content_type="application/json")
    if response.status_code != expect:
        text = response.content[:300].decode("utf-8", "replace")
        raise RuntimeError(f"POST {path}: HTTP {response.status_code}, expected {expect}: {text}")
    return response.json()
