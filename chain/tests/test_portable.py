"""Portable reputation across two site instances on one anvil.

Site A runs as its own process with its own PostgreSQL database and account (dev account 0);
site B is this test's Django (its test database, dev account 2). B creates its contract with
A's as referrer; A endorses it; a member registers on B with the same BLS key, proves it by
signing B's challenge, and their statistics on A are imported into B's contract and shown.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from chain.contracts import record_id
from chain.devnet import BASE_DIR
from chain.models import ChainConfig, ChainMember, Migration, MigrationStatus
from chain.services.migration import migration_challenge
from chain.services.push import members_push
from chain.services.transactions import chain_client
from chain.tests.sitekit import chain_settings, credit, keyed_member, new_keypair
from core.errors import Conflict
from receipts.bls import pop_prove, sign
from reputation.models import Ledger
from tracker import announce_runtime, authcache
from tracker.models import ClientPrefix
from tracker.services.members import member_api_token
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.tests.test_announce import Clock, announce
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db
GIB = 1024**3
SITE_A_DB = f"pbts_chain_site_a_{os.getpid()}"  # unique: parallel runs never collide


def _db_url(name: str) -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}"


class SiteA:
    """The first site: a separate process and database, driven through ``othersite``."""

    def __init__(self, node) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pbts_site.settings_test",
            "DATABASE_URL": _db_url(SITE_A_DB),
            "REDIS_URL": settings.REDIS_URL,
            "PBTS_REDIS_PREFIX": f"pbts-chain-site-a-{os.getpid()}",
            "PBTS_CHAIN_RPC_URL": node.url,
            # anvil's public dev key #0 as written by anvil itself: tests only.
            "PBTS_CHAIN_PRIVATE_KEY": node.dev_private_key(0),
            "PBTS_SITE_NAME": "Site A",
        }
        with psycopg.connect(_db_url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SITE_A_DB}")
            conn.execute(f"CREATE DATABASE {SITE_A_DB}")
        self.run("manage.py", "migrate", "-v0")

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def tool(self, *args: str) -> dict:
        return json.loads(self.run("-m", "chain.tests.othersite", *args).strip().splitlines()[-1])

    def drop(self) -> None:
        with psycopg.connect(_db_url("postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SITE_A_DB} WITH (FORCE)")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def site_a(anvil):
    """Site A (its own process and database) with alice: 40 GiB up, 10 GiB down, pushed to
    A's root contract. Yields (site A, alice's key pair, A's addresses)."""
    sk, pk = new_keypair()
    site = SiteA(anvil)
    try:
        a = site.tool(
            "setup",
            "--public-key",
            pk.hex(),
            "--pop",
            pop_prove(sk).hex(),
            "--uploaded",
            str(40 * GIB),
            "--downloaded",
            str(10 * GIB),
        )
        assert a["pushed"] == 1
        yield site, (sk, pk), a
    finally:
        site.drop()


@pytest.fixture
def two_sites(anvil, site_a):
    """Site B (this process, dev account 2) creates its contract with A's as referrer, using
    A's factory; A endorses it."""
    site, keys, a = site_a
    with chain_settings(anvil, account=2):
        from chain.services.deploy import factory_adopt, reputation_create

        factory_adopt(address=a["factory"])
        b_address = reputation_create(referrer=a["reputation"])
        site.tool("approve", b_address)
        yield site, keys, a


@pytest.fixture
def site_b_swarm(monkeypatch):
    """A torrent on site B, its announce runtime on a fake clock, Transmission whitelisted."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(clock=Clock()))
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    return upload_torrent(MemberFactory())


def _leech(member, torrent) -> dict:
    """Announce as a leecher on site B with the member's standing read afresh."""
    authcache.invalidate_passkey(member.passkey)
    return announce(Client(), member, torrent, left=500)


def test_member_carries_reputation_to_the_successor_site(
    two_sites, site_b_swarm, django_capture_on_commit_callbacks, settings
):
    # The settings fixture only: an override_settings decorator as well would be restored
    # first, and the fixture's later changes would then restore its values for the whole run.
    settings.MIN_RATIO = 0.5
    settings.PBTS_RATIO_GRACE_BYTES = 0
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = True
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = True
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    _site, (sk, pk), a = two_sites
    config = ChainConfig.objects.get()
    assert config.referrer_address == a["reputation"]
    # On site B, the member (another username here) registers the same BLS key. Their own
    # figures on B (0 up / 30 GiB down) are below MIN_RATIO: B refuses them to leech.
    member = MemberFactory(username="alice-on-b")
    Ledger.objects.filter(member=member).update(uploaded=0, downloaded=30 * GIB)
    torrent = site_b_swarm
    assert _leech(member, torrent) == {
        b"failure reason": b"Downloading disabled: ratio 0.00 is below 0.50"
    }
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    reply = api.post("/register", {"public_key": b64(pk), "pop": b64(pop_prove(sk))}, format="json")
    assert reply.status_code == 201, reply.content
    # They ask for a challenge and sign it with their key on their own machine.
    reply = api.post("/api/v1/chain/migrations", {}, format="json")
    assert reply.status_code == 201, reply.content
    challenge = reply.json()
    assert challenge["status"] == "challenged"
    assert challenge["record_id"] == "0x" + record_id(pk).hex()
    message = bytes.fromhex(challenge["message"])
    with django_capture_on_commit_callbacks(execute=True):
        reply = api.post(
            f"/api/v1/chain/migrations/{challenge['id']}/signature",
            {"signature": b64(sign(sk, message))},
            format="json",
        )
    assert reply.status_code == 202, reply.content
    migration = Migration.objects.get(pk=challenge["id"])
    assert migration.status == MigrationStatus.CONFIRMED, migration.error
    assert (migration.imported_uploaded, migration.imported_downloaded) == (40 * GIB, 10 * GIB)
    assert migration.source_address == a["reputation"]
    # Imported and shown: the public endpoint, the member's API and their profile.
    shown = api.get("/contract/user/alice-on-b").json()
    assert shown["imported"]["uploaded"] == 40 * GIB
    assert shown["imported"]["from"] == a["reputation"]
    assert shown["on_chain"] == {
        "exists": True,
        "uploaded": 40 * GIB,
        "downloaded": 10 * GIB,
        "migrated_from": a["reputation"],
    }
    assert api.get("/api/v1/chain/me").json()["migration"]["status"] == "confirmed"
    page = Client()
    page.login(username="alice-on-b", password=DEFAULT_PASSWORD)
    html = _profile(page)
    assert "Imported" in html and a["reputation"] in html
    # The imported figures count for B's ratio rule: (0 + 40) / (30 + 10) = 1.00.
    ledger = Ledger.objects.get(member=member)
    assert (ledger.imported_uploaded, ledger.imported_downloaded) == (40 * GIB, 10 * GIB)
    assert (ledger.verified_uploaded, ledger.verified_downloaded) == (0, 0)  # never mixed
    # The migration dropped the cached standing: the next announce counts the import.
    assert b"peers" in announce(Client(), member, torrent, left=500)
    assert api.get("/api/v1/me/").json()["ratio"] == pytest.approx(1.0)
    # A 10 GiB cap counts 10 up / 2.5 down: 10 / 32.5 = 0.31, refused.
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 10 * GIB
    assert _leech(member, torrent) == {
        b"failure reason": b"Downloading disabled: ratio 0.31 is below 0.50"
    }
    # With the policy off, the import is shown but does not count: refused as before.
    settings.PBTS_IMPORTED_UPLOAD_CAP_BYTES = 0
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = False
    settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = False
    assert _leech(member, torrent) == {
        b"failure reason": b"Downloading disabled: ratio 0.00 is below 0.50"
    }
    settings.PBTS_IMPORTED_UPLOAD_COUNTS = settings.PBTS_IMPORTED_DOWNLOAD_COUNTS = True
    # Site B's own verified figures add on top of the imported ones from now on.
    credit(member, GIB, 2 * GIB)
    assert members_push().pushed == 1
    client = chain_client()
    contract = client.contract("Reputation", config.reputation_address)
    assert contract.functions.userInfo(record_id(pk)).call()[1:3] == [41 * GIB, 12 * GIB]
    # Once only: a second migration is refused and the imported figures are not added twice.
    reply = api.post("/api/v1/chain/migrations", {}, format="json")
    assert reply.status_code == 409
    with pytest.raises(Conflict, match="already imported"):
        migration_challenge(member=member)
    ledger = Ledger.objects.get(member=member)
    assert (ledger.imported_uploaded, ledger.imported_downloaded) == (40 * GIB, 10 * GIB)
    assert b"peers" in _leech(member, torrent)


def _profile(client: Client) -> str:
    from django.urls import reverse

    response = client.get(reverse("profile"))
    assert response.status_code == 200
    return response.content.decode()


def test_copied_proof_of_possession_is_not_enough(two_sites, django_capture_on_commit_callbacks):
    """Mallory registers alice's public key on B with alice's proof of possession (both are
    public on A) and asks to import alice's record: without alice's secret key she cannot sign
    the challenge, so nothing is sent."""
    _site, (sk, pk), _a = two_sites
    mallory = MemberFactory(username="mallory")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(mallory)}")
    reply = api.post("/register", {"public_key": b64(pk), "pop": b64(pop_prove(sk))}, format="json")
    assert reply.status_code == 201
    challenge = api.post("/api/v1/chain/migrations", {}, format="json").json()
    own_sk, _ = new_keypair()
    for signature in (
        sign(own_sk, bytes.fromhex(challenge["message"])),  # her own key
        pop_prove(sk),  # the public proof of possession replayed
        b"\x00" * 96,
    ):
        reply = api.post(
            f"/api/v1/chain/migrations/{challenge['id']}/signature",
            {"signature": b64(signature)},
            format="json",
        )
        assert reply.status_code == 400
        assert "signature" in reply.json()
    assert Migration.objects.get(pk=challenge["id"]).status == MigrationStatus.CHALLENGED
    assert not ChainMember.objects.filter(member=mallory).exists()


def test_member_unknown_to_the_predecessor_fails_without_a_transaction(
    two_sites, django_capture_on_commit_callbacks
):
    keyed = keyed_member()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(keyed.member)}")
    challenge = api.post("/api/v1/chain/migrations", {}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        reply = api.post(
            f"/api/v1/chain/migrations/{challenge['id']}/signature",
            {"signature": "0x" + keyed.sign(bytes.fromhex(challenge["message"])).hex()},
            format="json",
        )
    assert reply.status_code == 202
    migration = Migration.objects.get(pk=challenge["id"])
    assert migration.status == MigrationStatus.FAILED
    assert "NotFoundInReferrers" in migration.error
    assert migration.tx_hash is None  # refused in simulation: nothing sent, no gas spent


def test_staff_migrate_still_needs_the_members_signature(
    two_sites, django_capture_on_commit_callbacks
):
    _site, (sk, pk), _a = two_sites
    keyed = keyed_member(keypair=(sk, pk), username="alice-b2")
    staff = MemberFactory(is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(staff)}")
    reply = api.post("/contract/migrate", {"username": "alice-b2"}, format="json")
    assert reply.status_code == 201, reply.content
    challenge = reply.json()
    reply = api.post(
        "/contract/migrate",
        {"username": "alice-b2", "migration_id": challenge["id"], "signature": b64(b"\1" * 96)},
        format="json",
    )
    assert reply.status_code == 400 and "signature" in reply.json()
    with django_capture_on_commit_callbacks(execute=True):
        reply = api.post(
            "/contract/migrate",
            {
                "username": "alice-b2",
                "migration_id": challenge["id"],
                "signature": b64(keyed.sign(bytes.fromhex(challenge["message"]))),
            },
            format="json",
        )
    assert reply.status_code == 202, reply.content
    assert Migration.objects.get(pk=challenge["id"]).status == MigrationStatus.CONFIRMED
