"""trackerd's authority under a flood of unknown passkeys (issue 14): a bounded negative cache
with a time-to-live, and database lookups kept off the event loop."""

import secrets
import socket
import threading
import time
import tracemalloc

import fastbencode
import pytest

from tracker import announce_runtime, authcache
from tracker.authority import LocalAuthority
from tracker.models import ClientPrefix, Member
from tracker.tests.factories import MemberFactory
from tracker.tests.test_trackerd import read_responses, request
from tracker.tests.torrents import upload_torrent
from tracker.tests.trackerd_helpers import running_trackerd


@pytest.fixture
def swarm():
    ClientPrefix.objects.create(prefix="-TR4", name="Transmission 4")
    seeder, leecher = MemberFactory(), MemberFactory()
    return upload_torrent(seeder), seeder, leecher


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_random_passkeys_stays_within_the_negative_bound(monkeypatch):
    # The attack: 5,000 random passkeys grew trackerd by 5.9 MiB, each remembered forever.
    monkeypatch.setattr(authcache, "load_member_standing", lambda passkey: None)
    authority = LocalAuthority(ttl=300, negative_size=10_000, negative_seconds=60)
    tracemalloc.start()
    try:
        for _ in range(20_000):
            assert authority.member(secrets.token_hex(16)) is None
        assert authority.negative_count() == 10_000
        assert authority._entries == {} and authority._loading == {}
        at_bound = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            authority.member(secrets.token_hex(16))
        grown = tracemalloc.get_traced_memory()[0] - at_bound
        assert authority.negative_count() == 10_000
        assert grown < 256 * 1024, grown  # at the bound, another 20,000 cost (almost) nothing
    finally:
        tracemalloc.stop()
        authority._loader.shutdown()


def test_the_negative_cache_forgets_the_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(authcache, "load_torrent_standing", lambda info_hash: None)
    authority = LocalAuthority(ttl=300, negative_size=2, negative_seconds=60)
    try:
        authority.torrent("a" * 40)
        authority.torrent("b" * 40)
        authority.torrent("c" * 40)
        assert list(authority._negative) == [
            authcache.torrent_key("b" * 40),
            authcache.torrent_key("c" * 40),
        ]
    finally:
        authority._loader.shutdown()


@pytest.mark.django_db(transaction=True)
def test_an_unknown_passkey_that_becomes_valid_is_accepted_after_the_ttl():
    clock = Clock()
    authority = LocalAuthority(ttl=300, negative_size=100, negative_seconds=60, clock=clock)
    passkey = secrets.token_hex(16)
    try:
        assert authority.member(passkey) is None
        member = MemberFactory()
        # That passkey becomes a member's (a new member: no invalidation is published).
        Member.objects.filter(pk=member.pk).update(passkey=passkey)
        clock.now += 59
        assert authority.member(passkey) is None  # still remembered as unknown
        clock.now += 2
        assert authority.member(passkey).member_id == member.pk  # after the TTL: accepted
        assert authority.negative_count() == 0
        # An invalidation forgets a negative answer at once.
        other = secrets.token_hex(16)
        assert authority.member(other) is None
        Member.objects.filter(pk=MemberFactory().pk).update(passkey=other)
        authority.forget(authcache.passkey_key(other))
        assert authority.member(other) is not None
    finally:
        authority.close()


@pytest.mark.django_db(transaction=True)
def test_the_event_loop_answers_a_known_member_while_misses_are_looked_up(monkeypatch, swarm):
    """The attack: each unknown passkey was looked up on the event loop (5,000 took 5.5 s),
    so everyone waited. Now the lookups run on a helper thread and a known member's
    keep-alive announce is answered meanwhile."""
    torrent, seeder, leecher = swarm
    real = authcache.load_member_standing
    unknown = [secrets.token_hex(16) for _ in range(20)]

    def slow(passkey):
        if passkey in unknown:
            time.sleep(0.1)  # 20 x 0.1 s of database time, one lookup at a time
        return real(passkey)

    monkeypatch.setattr(authcache, "load_member_standing", slow)
    monkeypatch.setattr(announce_runtime, "_runtime", announce_runtime.build_runtime())
    with running_trackerd() as daemon:
        known = socket.create_connection(("127.0.0.1", daemon.http_port))
        known.sendall(request(torrent, seeder))  # warm: the client whitelist is loaded
        assert read_responses(known, 1)[0][0] == b"HTTP/1.1 200 OK"
        flood = [socket.create_connection(("127.0.0.1", daemon.http_port)) for _ in unknown]
        for sock, passkey in zip(flood, unknown, strict=True):
            stranger = type("M", (), {"passkey": passkey})
            sock.sendall(request(torrent, stranger, peer=b"-TR4060-x"))
        time.sleep(0.05)  # the misses are queued
        started = time.monotonic()
        known.sendall(request(torrent, leecher, peer=b"-TR4060-l", left=10))
        ((status, _, body),) = read_responses(known, 1)
        took = time.monotonic() - started
        assert status == b"HTTP/1.1 200 OK" and fastbencode.bdecode(body)[b"complete"] == 1
        assert took < 1.0, took  # not behind 2 s of lookups
        answers = []

        def collect(sock):
            answers.append(fastbencode.bdecode(read_responses(sock, 1)[0][2]))

        readers = [threading.Thread(target=collect, args=(sock,)) for sock in flood]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(10)
        assert answers == [{b"failure reason": b"Unknown passkey"}] * len(unknown)
        for sock in [known, *flood]:
            sock.close()
