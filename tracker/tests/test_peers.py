"""The torrent page's peers, snatches and staff history, the peer selector in both modes
(in-process store, Redis), and the API lists. Attacks: a member never sees an address."""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import AuditLog
from tracker import announce_runtime
from tracker.announce.records import Credit, Event, PeerState
from tracker.announce.redis_sync import RedisPeerSync
from tracker.announce.store import Change, MemoryPeerStore
from tracker.models import ClientPrefix, TorrentHistory, TorrentStatus
from tracker.peers import client_name, swarm_states, torrent_peer_rows
from tracker.services.members import member_api_token
from tracker.services.torrents import torrent_moderate, torrent_set_promotion
from tracker.tests.factories import MemberFactory
from tracker.tests.test_announce import announce
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

SEED_IP, LEECH_IP = "203.0.113.7", "2001:db8::42"


def api_get(member, path: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client.get(path)


@pytest.fixture(params=["redis", "in-process"])
def mode(request, monkeypatch):
    """A fresh runtime: shared through the real Redis (the test settings), or in-process."""
    url = None if request.param == "redis" else ""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime(redis_url=url))
    return request.param


@pytest.fixture
def shared(monkeypatch):
    """A fresh runtime shared through the real Redis."""
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    assert announce_runtime.runtime().sync is not None
    return announce_runtime.runtime()


def _announce_pair(client):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    ClientPrefix.objects.create(prefix="-qB5", name="qBittorrent 5")
    seeder, leecher = MemberFactory(username="seedy"), MemberFactory(username="leechy")
    torrent = upload_torrent(seeder, name="Swarmed")
    for reply in (
        announce(client, seeder, torrent, ip=SEED_IP, left=0, uploaded=5000),
        announce(client, leecher, torrent, peer=b"-qB5010-", ip=LEECH_IP, left=12345, port=6881),
    ):
        assert b"failure reason" not in reply, reply
    return torrent, seeder, leecher


@pytest.fixture
def swarm(client, mode):
    """A seeder (IPv4) and a leecher (IPv6) of one torrent, announced through the view."""
    return _announce_pair(client)


def test_selector_lists_current_peers_seeders_first(swarm, mode):
    torrent, _seeder, _leecher = swarm
    rows = torrent_peer_rows(torrent_id=torrent.pk)
    assert [(r.username, r.is_seeder, r.client) for r in rows] == [
        ("seedy", True, "Transmission 4"),
        ("leechy", False, "qBittorrent 5"),
    ]
    assert (rows[0].ip, rows[0].port, rows[0].uploaded) == (SEED_IP, 51413, 5000)
    assert ipaddress.ip_address(rows[1].ip) == ipaddress.ip_address(LEECH_IP)
    assert (rows[1].port, rows[1].left) == (6881, 12345)
    assert abs(rows[0].last_announce.timestamp() - time.time()) < 60


def test_member_sees_peers_without_any_address(client, swarm):
    torrent, seeder, _leecher = swarm
    viewer = MemberFactory()
    client.force_login(viewer)
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    html = response.content.decode()
    assert response.context["peers"].paginator.count == 2
    assert "seedy" in html and "leechy" in html and "Transmission 4" in html
    assert "qBittorrent 5" in html and "12.06 KiB" in html  # left
    for secret in (SEED_IP, "2001:db8::42", "51413", "6881"):
        assert secret not in html, secret
    assert response.context["show_addresses"] is False
    body = api_get(viewer, f"/api/v1/torrents/{torrent.pk}/peers/").json()
    assert [row["member"] for row in body["results"]] == ["seedy", "leechy"]
    assert all(row["ip"] is None and row["port"] is None for row in body["results"])
    assert SEED_IP not in str(body) and "2001:db8" not in str(body)
    # Not even the peer's own member sees the address on the page.
    client.force_login(seeder)
    assert SEED_IP not in client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()


def test_staff_see_addresses_and_ports(client, swarm):
    torrent, *_ = swarm
    staff = MemberFactory(is_staff=True)
    client.force_login(staff)
    html = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert f"{SEED_IP}</code>:51413" in html and "2001:db8::42</code>:6881" in html
    rows = api_get(staff, f"/api/v1/torrents/{torrent.pk}/peers/").json()["results"]
    assert [(r["ip"], r["port"]) for r in rows] == [(SEED_IP, 51413), ("2001:db8::42", 6881)]


def test_stopped_and_silent_peers_are_not_listed(client, swarm, mode):
    torrent, _seeder, leecher = swarm
    announce(client, leecher, torrent, peer=b"-qB5010-", ip=LEECH_IP, left=0, event="stopped")
    assert [r.username for r in torrent_peer_rows(torrent_id=torrent.pk)] == ["seedy"]
    with override_settings(PBTS_PEER_TIMEOUT=-10):  # every announce is now too old
        assert torrent_peer_rows(torrent_id=torrent.pk) == []


def test_redis_mode_lists_peers_another_process_pushed(shared):
    """trackerd's workers push to Redis: the web process lists them without having seen the
    announces (and before replaying the log)."""
    torrent = upload_torrent(MemberFactory(username="remote"), name="Remote")
    member_id = torrent.uploader_id
    other_store = MemoryPeerStore(journal=True)
    other = RedisPeerSync(
        redis.Redis.from_url(settings.REDIS_URL),
        other_store,
        prefix=shared.sync.prefix,
        rules=announce_runtime.policy().rules,
    )
    state = PeerState(
        member_id=member_id,
        peer_id=b"-TR4060-abcdefghijkl",
        compact4=bytes([198, 51, 100, 9]) + (7000).to_bytes(2, "big"),
        compact6=b"",
        uploaded=1,
        downloaded=2,
        left=0,
        event=Event.STARTED,
        announced_at=time.time(),
    )
    key = (member_id, state.peer_id)
    other.push([Change(torrent.pk, key, None, state, Credit(), None, 0.0)])
    assert shared.store.swarm_peers(torrent.pk) == []  # this process never saw it
    rows = torrent_peer_rows(torrent_id=torrent.pk)
    assert [(r.username, r.ip, r.port, r.client) for r in rows] == [
        ("remote", "198.51.100.9", 7000, "-TR4060-")
    ]
    # A newer announce this process holds (not pushed yet) wins over the stored state.
    newer = PeerState(**{**{f: getattr(state, f) for f in state.__slots__}, "uploaded": 99})
    newer.announced_at = state.announced_at + 5
    shared.store.replicate(torrent.pk, key, newer)
    assert [r.uploaded for r in torrent_peer_rows(torrent_id=torrent.pk)] == [99]


def test_peer_list_paginates(client, mode):
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    torrent = upload_torrent(MemberFactory(), name="Busy")
    members = [MemberFactory() for _ in range(19)]  # at most 3 peers a member
    for i in range(55):
        member = members[i // 3]
        peer = f"-TR4060-{i:012d}".encode()
        reply = announce(client, member, torrent, peer=peer, ip=f"10.0.{i // 200}.{i % 200 + 1}")
        assert b"failure reason" not in reply, reply
    assert len(swarm_states(torrent_id=torrent.pk)) == 55
    viewer = MemberFactory()
    client.force_login(viewer)
    first = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert len(first.context["peers"].object_list) == 50
    assert "?peers=2#peers-heading" in first.content.decode()
    second = client.get(reverse("torrent_detail", args=[torrent.pk]), {"peers": 2})
    assert len(second.context["peers"].object_list) == 5
    page = api_get(viewer, f"/api/v1/torrents/{torrent.pk}/peers/?page_size=20&page=3").json()
    assert page["count"] == 55 and len(page["results"]) == 15


def test_client_names_from_peer_id_prefixes():
    prefixes = [("-qB5", "qBittorrent 5"), ("-TR", "Transmission")]
    assert client_name(b"-qB5010-abcdefghijkl", prefixes) == "qBittorrent 5"
    assert client_name(b"-TR3000-abcdefghijkl", prefixes) == "Transmission"
    assert client_name(b"-DE13F0-abcdefghijkl", prefixes) == "-DE13F0-"
    assert client_name(b"M7-4-3--abcdefghijkl", prefixes) == "Unknown"
    assert client_name(b"\xff\x00<script>xxxxxxxxxx", prefixes) == "Unknown"


def test_peer_store_down_is_a_note_on_the_page_and_503_on_the_api(client, shared, monkeypatch):
    torrent, *_ = _announce_pair(client)
    monkeypatch.setattr(
        shared.sync, "client", redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    )
    viewer = MemberFactory()
    client.force_login(viewer)
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert response.status_code == 200
    assert "The peer list is unavailable right now." in response.content.decode()
    api = api_get(viewer, f"/api/v1/torrents/{torrent.pk}/peers/")
    assert api.status_code == 503 and "detail" in api.json()


# --- Snatches ---------------------------------------------------------------------------------


def test_snatch_list_shows_completions_with_seeding_time(client):
    torrent = upload_torrent(MemberFactory(), name="Popular")
    now = timezone.now()
    done = [MemberFactory(username=f"snatcher{i}") for i in range(3)]
    for i, member in enumerate(done):
        TorrentHistory.objects.create(
            member=member,
            torrent=torrent,
            completed_at=now - timedelta(hours=i),
            seed_seconds=[90061, 7260, 59][i],
        )
    TorrentHistory.objects.create(member=MemberFactory(username="stillleeching"), torrent=torrent)
    viewer = MemberFactory()
    client.force_login(viewer)
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    html = response.content.decode()
    assert [s.member.username for s in response.context["snatches"]] == [
        "snatcher0",
        "snatcher1",
        "snatcher2",
    ]
    assert "stillleeching" not in html
    assert "1d 1h" in html and "2h 1m" in html and "0m" in html
    body = api_get(viewer, f"/api/v1/torrents/{torrent.pk}/snatches/").json()
    assert body["count"] == 3
    assert body["results"][0]["member"] == "snatcher0"
    assert body["results"][0]["seed_seconds"] == 90061
    assert set(body["results"][0]) == {"member", "completed_at", "seed_seconds"}


def test_snatch_list_paginates(client):
    torrent = upload_torrent(MemberFactory(), name="Very popular")
    now = timezone.now()
    for i in range(51):
        TorrentHistory.objects.create(
            member=MemberFactory(), torrent=torrent, completed_at=now - timedelta(minutes=i)
        )
    client.force_login(MemberFactory())
    first = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert len(first.context["snatches"].object_list) == 50
    second = client.get(reverse("torrent_detail", args=[torrent.pk]), {"snatches": 2})
    assert len(second.context["snatches"].object_list) == 1


def test_lists_of_a_torrent_i_cannot_see_are_404(client):
    staff = MemberFactory(is_staff=True)
    torrent = upload_torrent(MemberFactory(), name="Gone")
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.DELETED, reason="dupe")
    viewer = MemberFactory()
    for path in ("peers", "snatches"):
        assert api_get(viewer, f"/api/v1/torrents/{torrent.pk}/{path}/").status_code == 404
        assert api_get(staff, f"/api/v1/torrents/{torrent.pk}/{path}/").status_code == 200


# --- Staff history ----------------------------------------------------------------------------


def test_staff_see_the_moderation_history_and_members_do_not(client):
    staff = MemberFactory(is_staff=True, username="modbob")
    torrent = upload_torrent(MemberFactory(), name="Moderated")
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.REJECTED, reason="Bad NFO")
    torrent_moderate(torrent=torrent, actor=staff, status=TorrentStatus.APPROVED, reason="")
    torrent_set_promotion(torrent=torrent, actor=staff, is_freeleech=True, is_double_upload=False)
    other = upload_torrent(MemberFactory(), name="Other")
    torrent_moderate(torrent=other, actor=staff, status=TorrentStatus.REJECTED, reason="Elsewhere")
    client.force_login(staff)
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    html = response.content.decode()
    entries = list(response.context["history"])
    assert len(entries) == AuditLog.objects.filter(target_id=str(torrent.pk)).count() >= 3
    assert "Moderation history" in html and "Bad NFO" in html and "modbob" in html
    assert "Elsewhere" not in html  # another torrent's history
    member = MemberFactory()
    client.force_login(member)
    member_view = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert "history" not in member_view.context
    assert "Moderation history" not in member_view.content.decode()
    assert "Bad NFO" not in member_view.content.decode()
