"""``/config`` (docs/config.md): the public configuration, the staff-only run-time changes
(audited, refused for anyone else, verification never turned off) and their effect on the
Django announce view and on a running trackerd within ``PBTS_CONFIG_SECONDS``."""

from __future__ import annotations

import socket
import time
from urllib.parse import quote_from_bytes

import django
import fastbencode
import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from core.models import AuditLog
from receipts.site import site_realm
from reputation.models import Ledger
from tracker import announce_runtime
from tracker.models import ClientPrefix, Member, RuntimeConfig
from tracker.runtime_config import VERSION_KEY, runtime_values
from tracker.services.members import member_api_token, member_ban
from tracker.tests import test_announce
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent
from tracker.tests.trackerd_helpers import running_trackerd, trackerd_subprocess

pytestmark = pytest.mark.django_db


def token_client(member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


@pytest.fixture
def staff():
    return MemberFactory(is_staff=True)


@pytest.fixture
def staff_api(staff):
    return token_client(staff)


# --- GET ------------------------------------------------------------------------------------


def test_get_is_public_and_shows_the_settings_when_nothing_was_changed():
    body = APIClient().get("/config").json()
    assert body == {
        "min_ratio": settings.MIN_RATIO,
        "max_peers": settings.MAX_PEERS,
        "announce_interval": settings.PBTS_ANNOUNCE_INTERVAL,
        "min_interval": settings.PBTS_ANNOUNCE_MIN_INTERVAL,
        "ratio_grace_bytes": settings.PBTS_RATIO_GRACE_BYTES,
        "sitewide_freeleech": False,
        "realm_id": site_realm().hex(),
        "verify_signatures": True,
        "receipt_window": settings.PBTS_RECEIPT_WINDOW_SECONDS,
        "tee_mode": "none",
        "chain_configured": bool(settings.PBTS_CHAIN_RPC_URL and settings.PBTS_CHAIN_PRIVATE_KEY),
        "version": 0,
        "versions": {
            "pbts": body["versions"]["pbts"],
            "python": body["versions"]["python"],
            "django": django.get_version(),
        },
    }
    assert body["versions"]["pbts"] != "unknown"
    assert len(bytes.fromhex(body["realm_id"])) == 32


def test_get_with_a_bad_token_is_still_answered():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/config").status_code == 200


@override_settings(
    PBTS_CHAIN_RPC_URL="http://127.0.0.1:8545", PBTS_CHAIN_PRIVATE_KEY="0x" + "1" * 64
)
def test_get_says_when_the_chain_is_configured_and_never_shows_the_key():
    response = APIClient().get("/config")
    assert response.json()["chain_configured"] is True
    assert b"1111111111" not in response.content and b"8545" not in response.content


# --- POST: each field, audited -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_ratio", 1.25),
        ("min_ratio", 0.0),
        ("min_ratio", 10.0),
        ("max_peers", 1),
        ("max_peers", 200),
        ("ratio_grace_bytes", 0),
        ("ratio_grace_bytes", 10 * 1024**4),
        ("sitewide_freeleech", True),
    ],
)
def test_staff_changes_each_field_and_it_is_audited(staff, staff_api, field, value):
    old = runtime_values().as_dict()[field]
    response = staff_api.post("/config", {field: value}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()[field] == value
    assert response.json()["version"] == 1
    assert APIClient().get("/config").json()[field] == value
    row = RuntimeConfig.objects.get(pk=1)
    assert getattr(row, field) == value and row.version == 1
    log = AuditLog.objects.get(action="runtime_config_update")
    assert log.actor == staff
    assert log.old_values == {field: old} and log.new_values == {field: value}


def test_several_fields_at_once_and_an_unchanged_value_makes_no_new_version(staff_api):
    body = {"min_ratio": 2, "max_peers": 7, "sitewide_freeleech": True}
    assert staff_api.post("/config", body, format="json").json()["version"] == 1
    again = staff_api.post("/config", body, format="json").json()
    assert again["version"] == 1 and again["max_peers"] == 7
    assert AuditLog.objects.filter(action="runtime_config_update").count() == 1
    assert staff_api.post("/config", {"max_peers": 8}, format="json").json()["version"] == 2


def test_verify_signatures_cannot_be_turned_off(staff_api):
    response = staff_api.post("/config", {"verify_signatures": False}, format="json")
    assert response.status_code == 400
    assert "cannot be turned off" in response.json()["verify_signatures"][0]
    assert not RuntimeConfig.objects.exists()
    assert APIClient().get("/config").json()["verify_signatures"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"receipt_window": 3600},
        {"tee_mode": "tdx"},
        {"realm_id": "00" * 32},
        {"no_such_setting": 1},
        {"max_peers": 10, "tee_mode": "tdx"},
    ],
)
def test_unknown_or_read_only_keys_are_refused_by_name(staff_api, body):
    response = staff_api.post("/config", body, format="json")
    assert response.status_code == 400
    bad = next(key for key in body if key != "max_peers")
    assert bad in response.json()
    assert not RuntimeConfig.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_ratio", -0.1),
        ("min_ratio", 10.01),
        ("min_ratio", "high"),
        ("max_peers", 0),
        ("max_peers", 201),
        ("max_peers", 2.5),
        ("ratio_grace_bytes", -1),
        ("ratio_grace_bytes", 2**70),
        ("sitewide_freeleech", "maybe"),
    ],
)
def test_bad_values_are_refused_with_the_field(staff_api, field, value):
    response = staff_api.post("/config", {field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not RuntimeConfig.objects.exists()


def test_an_empty_body_is_refused(staff_api):
    response = staff_api.post("/config", {}, format="json")
    assert response.status_code == 400 and "non_field_errors" in response.json()


# --- POST: who may ---------------------------------------------------------------------------


def test_anonymous_member_and_banned_staff_cannot_change_anything(staff):
    assert APIClient().post("/config", {"min_ratio": 0}, format="json").status_code in (401, 403)
    member = MemberFactory()
    assert token_client(member).post("/config", {"min_ratio": 0}, format="json").status_code == 403
    session = APIClient()
    session.force_login(member)
    assert session.post("/config", {"min_ratio": 0}, format="json").status_code == 403
    banned = MemberFactory(is_staff=True)
    client = token_client(banned)
    owner = MemberFactory(is_staff=True, is_superuser=True)
    member_ban(member=banned, actor=owner, reason="test")
    assert Member.objects.get(pk=banned.pk).is_banned
    assert client.post("/config", {"min_ratio": 0}, format="json").status_code in (401, 403)
    assert not RuntimeConfig.objects.exists()
    assert not AuditLog.objects.filter(action="runtime_config_update").exists()


def test_staff_session_needs_the_csrf_token(staff):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post("/config", {"max_peers": 9}, format="json")
    assert response.status_code == 403
    assert not RuntimeConfig.objects.exists()
    assert "CSRF" in response.json()["detail"]
    secret = "a" * 32  # the cookie's secret, as the site's pages would set it
    client.cookies["csrftoken"] = secret
    response = client.post("/config", {"max_peers": 9}, format="json", HTTP_X_CSRFTOKEN=secret)
    assert response.status_code == 200 and response.json()["max_peers"] == 9


def test_the_schema_names_config():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/config"]
    assert set(operations) >= {"get", "post"}
    components = schema["components"]["schemas"]
    assert "verify_signatures" in components["ConfigUpdate"]["properties"]
    assert "sitewide_freeleech" in components["Config"]["properties"]


# --- effect on the Django announce view ------------------------------------------------------


clock = test_announce.clock  # the fake clock fixture of the announce tests


@pytest.fixture
def swarm(clock):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher = MemberFactory(), MemberFactory()
    return upload_torrent(seeder), seeder, leecher


def announce(client, member, torrent, *, peer=b"-TR4060-", **params):
    values = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": peer.ljust(20, b"x"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": b"0",
        "event": b"started",
    }
    values.update({k: v if isinstance(v, bytes) else str(v).encode() for k, v in params.items()})
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in values.items())
    response = client.get(f"/announce/{member.passkey}?{query}")
    assert response.status_code == 200
    return fastbencode.bdecode(response.content)


@override_settings(PBTS_CONFIG_SECONDS=0.0)
def test_a_leecher_below_the_new_min_ratio_is_refused_after_the_change(client, swarm, staff_api):
    torrent, _seeder, leecher = swarm
    Ledger.objects.filter(member=leecher).update(uploaded=60, downloaded=100)
    staff_api.post("/config", {"ratio_grace_bytes": 0}, format="json")
    assert b"peers" in announce(client, leecher, torrent, left=500)  # 0.60 >= 0.50
    assert staff_api.post("/config", {"min_ratio": 0.75}, format="json").status_code == 200
    reply = announce(client, leecher, torrent, left=500, peer=b"-TR4060-two")
    assert reply == {b"failure reason": b"Downloading disabled: ratio 0.60 is below 0.75"}
    staff_api.post("/config", {"min_ratio": 0.5}, format="json")
    assert b"peers" in announce(client, leecher, torrent, left=500, peer=b"-TR4060-three")


def test_the_change_waits_for_the_period_then_applies(client, swarm, staff_api):
    """With the default period the policy in force is kept until the next check (the stated
    delay), then the change applies without a restart."""
    torrent, _seeder, leecher = swarm
    Ledger.objects.filter(member=leecher).update(uploaded=60, downloaded=100)
    staff_api.post("/config", {"ratio_grace_bytes": 0}, format="json")
    announce_runtime.policy.refresh(force=True)
    staff_api.post("/config", {"min_ratio": 0.75}, format="json")
    assert announce_runtime.policy().min_ratio == settings.MIN_RATIO  # within the period
    with override_settings(PBTS_CONFIG_SECONDS=0.0):
        reply = announce(client, leecher, torrent, left=500)
    assert reply == {b"failure reason": b"Downloading disabled: ratio 0.60 is below 0.75"}


@override_settings(PBTS_CONFIG_SECONDS=0.0)
def test_max_peers_caps_numwant_after_the_change(client, swarm, staff_api):
    torrent, seeder, leecher = swarm
    others = [MemberFactory() for _ in range(4)]
    for index, member in enumerate([seeder, *others]):
        announce(client, member, torrent, peer=b"-TR4060-s%d" % index)
    assert len(announce(client, leecher, torrent, left=5, numwant=50)[b"peers"]) == 5 * 6
    staff_api.post("/config", {"max_peers": 2}, format="json")
    reply = announce(client, leecher, torrent, left=5, numwant=50, peer=b"-TR4060-l2")
    assert len(reply[b"peers"]) == 2 * 6
    reply = announce(client, leecher, torrent, left=5, peer=b"-TR4060-l3")  # no numwant
    assert len(reply[b"peers"]) == 2 * 6


@override_settings(PBTS_CONFIG_SECONDS=0.0)
def test_sitewide_freeleech_credits_no_download_until_turned_off(client, swarm, staff_api, clock):
    torrent, seeder, leecher = swarm
    announce(client, seeder, torrent)
    announce(client, leecher, torrent, left=5000)
    staff_api.post("/config", {"sitewide_freeleech": True}, format="json")
    clock.now += 1000
    announce(client, seeder, torrent, uploaded=1000, event="")
    announce(client, leecher, torrent, left=4000, downloaded=1000, event="")
    assert announce_runtime.flush_now() is True
    assert Ledger.objects.get(member=leecher).downloaded == 0
    assert Ledger.objects.get(member=seeder).uploaded == 1000  # upload still counts
    staff_api.post("/config", {"sitewide_freeleech": False}, format="json")
    clock.now += 1000
    announce(client, leecher, torrent, left=3000, downloaded=2000, event="")
    announce_runtime.flush_now()
    assert Ledger.objects.get(member=leecher).downloaded == 1000


def test_the_version_is_published_so_a_check_costs_no_query(
    swarm, staff_api, django_assert_num_queries
):
    staff_api.post("/config", {"max_peers": 3}, format="json")
    from django.core.cache import cache

    assert cache.get(VERSION_KEY) == 1
    assert announce_runtime.policy.refresh(force=True).rules.max_peers == 3
    with override_settings(PBTS_CONFIG_SECONDS=0.0), django_assert_num_queries(0):
        assert announce_runtime.policy().rules.max_peers == 3


# --- effect on trackerd ----------------------------------------------------------------------


def _trackerd_announce(port, torrent, member, *, peer, left, numwant=50):
    params = {
        "info_hash": bytes.fromhex(torrent.info_hash),
        "peer_id": peer.ljust(20, b"x"),
        "port": b"51413",
        "uploaded": b"0",
        "downloaded": b"0",
        "left": str(left).encode(),
        "event": b"started",
        "numwant": str(numwant).encode(),
    }
    query = "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, v in params.items())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET /announce/{member.passkey}?{query} HTTP/1.1\r\nHost: t\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return fastbencode.bdecode(data.split(b"\r\n\r\n", 1)[1])


@pytest.mark.django_db(transaction=True)
@override_settings(PBTS_CONFIG_SECONDS=0.5)
def test_trackerd_applies_a_change_within_the_period(monkeypatch):
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    staff, leecher = MemberFactory(is_staff=True), MemberFactory()
    torrent = upload_torrent(staff)
    seeders = [MemberFactory() for _ in range(3)]
    Ledger.objects.filter(member=leecher).update(uploaded=60, downloaded=100)
    api = token_client(staff)
    api.post("/config", {"ratio_grace_bytes": 0}, format="json")
    with running_trackerd() as daemon:
        for index, member in enumerate(seeders):
            _trackerd_announce(
                daemon.http_port, torrent, member, peer=b"-TR4060-s%d" % index, left=0
            )
        first = _trackerd_announce(daemon.http_port, torrent, leecher, peer=b"-TR4060-a", left=9)
        assert len(first[b"peers"]) == 3 * 6
        api.post("/config", {"min_ratio": 0.75, "max_peers": 1}, format="json")
        changed = time.monotonic()
        refusal = b"Downloading disabled: ratio 0.60 is below 0.75"
        reply = {}
        while time.monotonic() - changed < 0.5 + 2.0:  # the period, plus slack for a loaded box
            reply = _trackerd_announce(
                daemon.http_port, torrent, leecher, peer=b"-TR4060-b", left=9
            )
            if reply.get(b"failure reason") == refusal:
                break
            time.sleep(0.05)
        assert reply == {b"failure reason": refusal}
        seeder = _trackerd_announce(
            daemon.http_port, torrent, seeders[0], peer=b"-TR4060-s9", left=0
        )
        assert len(seeder[b"peers"]) <= 6
    AuditLog.objects.filter(action="runtime_config_update").delete()
    RuntimeConfig.objects.all().delete()


@pytest.fixture
def trackerd_process(tmp_path):
    """``manage.py trackerd`` in its own process (HTTP only, production settings module) on
    this run's database and Redis prefix, checking the configuration every 0.5 s; stopped by
    PID at the end."""
    with trackerd_subprocess(tmp_path / "trackerd.log", PBTS_CONFIG_SECONDS="0.5") as port:
        yield port


@pytest.mark.django_db(transaction=True)
def test_a_separate_trackerd_process_applies_a_change_within_the_period(trackerd_process):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    staff, leecher = MemberFactory(is_staff=True), MemberFactory()
    torrent = upload_torrent(staff)
    Ledger.objects.filter(member=leecher).update(uploaded=60, downloaded=100)
    api = token_client(staff)
    assert api.post("/config", {"ratio_grace_bytes": 0}, format="json").status_code == 200
    time.sleep(1.0)  # the first change reached trackerd (two periods)
    first = _trackerd_announce(trackerd_process, torrent, leecher, peer=b"-TR4060-a", left=9)
    assert b"peers" in first  # ratio 0.60 >= 0.50
    assert api.post("/config", {"min_ratio": 0.75}, format="json").status_code == 200
    changed = time.monotonic()
    refusal = b"Downloading disabled: ratio 0.60 is below 0.75"
    reply: dict = {}
    while time.monotonic() - changed < 0.5 + 3.0:  # the period, plus slack for a loaded box
        reply = _trackerd_announce(trackerd_process, torrent, leecher, peer=b"-TR4060-b", left=9)
        if reply.get(b"failure reason") == refusal:
            break
        time.sleep(0.05)
    assert reply == {b"failure reason": refusal}


@pytest.mark.parametrize("body", [[{"max_peers": 3}], "max_peers=3", {"max_peers": None}])
def test_a_body_that_is_not_an_object_of_values_is_a_400_not_a_500(staff_api, body):
    response = staff_api.post("/config", body, format="json")
    assert response.status_code == 400
    assert not RuntimeConfig.objects.exists()
