"""Fixtures and helpers of the receipts tests: members with keys, a torrent, a swarm
history, receipts signed by the downloader, and API clients."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from receipts import format as receipt_format
from receipts.bls import aggregate, keygen, pop_prove, sign
from receipts.models import BLSKey
from receipts.site import site_realm
from tracker.models import Member, Torrent, TorrentHistory
from tracker.services.members import member_api_token
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

# The Ethereum BLS vectors carried in the repository (source and licence: vectors/README.md).
VECTORS = Path(__file__).resolve().parent / "vectors" / "bls"

TORRENT_SIZE = 100_000
PIECE = 16_384
PIECES = 7  # ceil(100_000 / 16_384)
LAST_PIECE = TORRENT_SIZE - PIECE * (PIECES - 1)  # 1_696


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


@dataclass
class Actor:
    """A member with a BLS key pair (``sk`` int, ``pk`` 48 bytes)."""

    member: Member
    sk: int
    pk: bytes

    def sign(self, data: bytes) -> bytes:
        """The member's signature of ``data`` (96 bytes)."""
        return sign(self.sk, data)


_counter = iter(range(1, 1_000_000))


def new_keypair() -> tuple[int, bytes]:
    """A fresh deterministic key pair (different on every call)."""
    seed = hashlib.sha256(f"pbts-test-key-{next(_counter)}-{time.time_ns()}".encode()).digest()
    return keygen(seed)


def make_actor(*, register: bool = True, **member_kwargs: Any) -> Actor:
    """A member with a key pair; ``register`` stores the key as active directly (fast, no
    backend call: the key tests go through the service and the API)."""
    member = MemberFactory(**member_kwargs)
    sk, pk = new_keypair()
    if register:
        BLSKey.objects.create(member=member, public_key=pk, pop=pop_prove(sk))
    return Actor(member=member, sk=sk, pk=pk)


def api_for(member: Member | None) -> APIClient:
    """An API client authenticated with ``member``'s token (anonymous for ``None``)."""
    client = APIClient()
    if member is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def post_json(client: APIClient, url: str, body: Any):
    """POST ``body`` as JSON."""
    return client.post(url, data=json.dumps(body), content_type="application/json")


def make_receipt(
    uploader: Actor,
    downloader: Actor,
    torrent: Torrent,
    *,
    index: int = 0,
    length: int | None = None,
    when: float | None = None,
    realm: bytes | None = None,
    bucket: int | None = None,
) -> bytes:
    """The signed bytes of a receipt for piece ``index`` of ``torrent`` (right length unless
    ``length`` is given), at ``when`` (now) or in ``bucket``, in this site's realm."""
    if length is None:
        length = LAST_PIECE if index == torrent.piece_count - 1 else torrent.piece_length
    if bucket is None:
        bucket = receipt_format.time_bucket(time.time() if when is None else when)
    return receipt_format.Receipt(
        realm=site_realm() if realm is None else realm,
        info_hash=bytes.fromhex(torrent.info_hash),
        piece_index=index,
        piece_length=length,
        uploader_pk=uploader.pk,
        downloader_pk=downloader.pk,
        time_bucket=bucket,
    ).to_bytes()


def single(data: bytes, signer: Actor) -> dict[str, str]:
    """A singly-signed report entry."""
    return {"receipt": b64(data), "signature": b64(signer.sign(data))}


def group(entries: list[tuple[bytes, Actor]]) -> dict[str, Any]:
    """An aggregate report entry: each receipt signed by its actor, signatures aggregated."""
    return {
        "receipts": [b64(data) for data, _ in entries],
        "signature": b64(aggregate([actor.sign(data) for data, actor in entries])),
    }


def seen(member: Member, torrent: Torrent) -> TorrentHistory:
    """Record that ``member`` was in ``torrent``'s swarm just now, leeching (as the statistics
    flush records a peer announcing with ``left > 0``)."""
    return TorrentHistory.objects.create(
        member=member, torrent=torrent, downloaded=PIECE, leeched_at=timezone.now()
    )


def vector(name: str) -> dict[str, Any]:
    """One of the shared Ethereum BLS test vectors, e.g. ``deserialization_G1/...``."""
    return json.loads((VECTORS / f"{name}.json").read_text())


@pytest.fixture
def uploader(db) -> Actor:
    return make_actor()


@pytest.fixture
def downloader(db) -> Actor:
    return make_actor()


@pytest.fixture
def torrent(db, uploader: Actor) -> Torrent:
    """An approved 100,000-byte torrent of 16 KiB pieces (7 pieces, the last 1,696 bytes)."""
    t = upload_torrent(uploader.member, size=TORRENT_SIZE, piece_length=PIECE)
    assert (t.piece_count, t.size) == (PIECES, TORRENT_SIZE)
    return t


@pytest.fixture
def swarm(torrent: Torrent, downloader: Actor) -> Torrent:
    """The torrent, with its uploader and the downloader seen in its swarm now."""
    seen(torrent.uploader, torrent)
    seen(downloader.member, torrent)
    return torrent


@pytest.fixture(params=["blst", "py_ecc"])
def backend_name(request, settings) -> str:
    """Run the test with each verification backend (keep py_ecc cases small: ~0.5 s each)."""
    settings.PBTS_BLS_BACKEND = request.param
    return request.param
