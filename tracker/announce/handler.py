"""The announce and scrape pipeline shared by every front end: parse -> authorize -> update ->
select -> encode. Pure code, no Django import; the front end supplies an :class:`Authority`
(cached standings) and a peer store.

The decisions have one implementation each, whatever the wire: :func:`announce_outcome` (a
parsed :class:`AnnounceRequest` in, the swarm's outcome out, refusals raised) and
:func:`scrape_counts` / :func:`scrape_member`. :func:`handle_announce` and
:func:`handle_scrape` wrap them for HTTP (query string in, bencode out); the UDP tracker
(``tracker.announce.udp``, BEP 15) wraps them for packets.

Refusals are plain words, sent as a bencoded ``failure reason`` with HTTP 200 (BEP 3).
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from reputation.policy import leech_verdict
from tracker.announce.protocol import (
    AnnounceRequest,
    Refusal,
    encode_announce,
    encode_announce_dicts,
    encode_failure,
    encode_scrape,
    parse_announce,
    parse_scrape,
)
from tracker.announce.store import MemoryPeerStore
from tracker.announce.swarm import Announce, Outcome, Refused, Rules

PASSKEY_RE = re.compile(r"[0-9a-f]{32}")
# Ports of other P2P networks that private trackers refuse (Ocelot practice): Direct Connect,
# Kazaa, eMule, Gnutella, WinMX.
DEFAULT_BLACKLISTED_PORTS = frozenset({411, 412, 413, 1214, 4662, 6346, 6347, 6699})


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """What authorization needs of a member; byte figures are the ledger's totals."""

    member_id: int
    is_banned: bool
    can_download: bool
    is_ratio_exempt: bool
    uploaded: int = 0
    downloaded: int = 0


@dataclass(frozen=True, slots=True)
class TorrentStanding:
    """What authorization and accounting need of a registered (approved) torrent."""

    torrent_id: int
    is_freeleech: bool
    is_double_upload: bool


class Authority(Protocol):
    """Cached answers the pipeline asks for; every method must be cheap (no query per call
    once warm)."""

    def member(self, passkey: str) -> MemberStanding | None: ...

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None: ...

    def client_allowed(self, peer_id: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """Site rules for announces: intervals (seconds), ratio figures, refused ports."""

    rules: Rules = field(default_factory=Rules)
    min_ratio: float = 0.5
    grace_bytes: int = 5 * 1024**3
    blacklisted_ports: frozenset[int] = frozenset()


def resolve_client_ip(remote: str, forwarded_for: str, trusted: frozenset[str] | list[str]) -> str:
    """The announcing client's address: the socket address ``remote``, or, only when it is a
    trusted proxy, the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy
    (RFC 7239 practice). Never believe the header from anyone else."""
    if remote not in trusted:
        return remote
    for candidate in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break
        if candidate not in trusted:
            return candidate
    return remote


@functools.lru_cache(maxsize=65536)
def _packed_address(ip: str) -> bytes:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.packed


def compact_address(ip: str, port: int) -> tuple[bytes, bytes]:
    """Return ``(compact4, compact6)`` for an address: one is the 6- or 18-byte BEP 23/7 entry,
    the other empty. IPv4-mapped IPv6 addresses count as IPv4.

    Raises:
        ValueError: ``ip`` is not an IP address.
    """
    packed = _packed_address(ip)
    entry = packed + port.to_bytes(2, "big")
    return (entry, b"") if len(packed) == 4 else (b"", entry)


def _other_family(text: str, port: int, want: int) -> bytes:
    """The BEP 7 ``ipv4``/``ipv6`` parameter as a compact entry if it is a global address of
    family ``want`` (``addr``, ``v4:port`` or ``[v6]:port``); ``b""`` otherwise (ignored)."""
    host, tail = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        tail = rest.removeprefix(":")
    elif want == 4 and text.count(":") == 1:
        host, _, tail = text.partition(":")
    try:
        addr = ipaddress.ip_address(host)
        port = int(tail) if tail else port
    except ValueError:
        return b""
    if addr.version != want or not addr.is_global or not 0 < port < 65536:
        return b""
    return addr.packed + port.to_bytes(2, "big")


def peer_addresses(client_ip: str, req: AnnounceRequest) -> tuple[bytes, bytes]:
    """``(compact4, compact6)`` of the announcing peer: the socket address, plus the BEP 7
    address of the other family a dual-stack client names (never instead of the socket's)."""
    try:
        compact4, compact6 = compact_address(client_ip, req.port)
    except ValueError as exc:
        raise Refusal("Cannot tell your IP address") from exc
    if compact4 and req.ipv6:
        compact6 = _other_family(req.ipv6, req.port, 6)
    elif compact6 and req.ipv4:
        compact4 = _other_family(req.ipv4, req.port, 4)
    return compact4, compact6


def _authorize(
    req: AnnounceRequest, auth: Authority, policy: Policy
) -> tuple[MemberStanding, TorrentStanding]:
    if not PASSKEY_RE.fullmatch(req.passkey):
        raise Refusal("Unknown passkey")
    member = auth.member(req.passkey)
    if member is None:
        raise Refusal("Unknown passkey")
    if member.is_banned:
        raise Refusal("Account banned")
    if not auth.client_allowed(req.peer_id):
        raise Refusal("Client not allowed")
    if req.port in policy.blacklisted_ports:
        raise Refusal(f"Port {req.port} is blacklisted")
    torrent = auth.torrent(req.info_hash.hex())
    if torrent is None:
        raise Refusal("Unregistered torrent")
    return member, torrent


def _leech_refusal(member: MemberStanding, policy: Policy) -> str:
    if not member.can_download:
        return "Downloading disabled by staff"
    verdict = leech_verdict(
        uploaded=member.uploaded,
        downloaded=member.downloaded,
        min_ratio=policy.min_ratio,
        grace_bytes=policy.grace_bytes,
        exempt=member.is_ratio_exempt,
    )
    return verdict.reason


def announce_outcome(
    req: AnnounceRequest,
    *,
    client_ip: str,
    auth: Authority,
    store: MemoryPeerStore,
    policy: Policy,
) -> Outcome:
    """Decide one parsed announce: authorize -> address -> update the swarm -> select peers.

    The one implementation of the announce rules, shared by every front end: the HTTP handler
    (:func:`handle_announce`) parses a query string into ``req`` and bencodes the result; the
    UDP tracker (``tracker.announce.udp``, BEP 15) builds ``req`` from a packet and encodes a
    BEP 15 reply.

    Args:
        req: the parsed announce (``passkey`` included; ``compact`` picks ``Outcome.peers4``/
            ``peers6`` over ``Outcome.peers``).
        client_ip: the socket address (or a trusted proxy's forwarded address), as text.

    Returns:
        The swarm's :class:`~tracker.announce.swarm.Outcome` (credit already accumulated in
        ``store``; ``complete``/``incomplete`` counts; the chosen peers).

    Raises:
        Refusal: any refusal, with its plain-words reason (unknown passkey, banned, client not
            allowed, blacklisted port, unregistered torrent, announce too soon, too many peers,
            downloading disabled by ratio or staff). A leecher refused by the ratio rule is
            still credited for what it did since its last announce (BEP 3 ``failure reason``).
    """
    member, torrent = _authorize(req, auth, policy)
    compact4, compact6 = peer_addresses(client_ip, req)
    refusal = _leech_refusal(member, policy) if req.left > 0 else ""
    ann = Announce(
        member_id=member.member_id,
        peer_id=req.peer_id,
        compact4=compact4,
        compact6=compact6,
        uploaded=req.uploaded,
        downloaded=req.downloaded,
        left=req.left,
        event=req.event,
        numwant=req.numwant,
        compact=req.compact,
        is_freeleech=torrent.is_freeleech,
        is_double_upload=torrent.is_double_upload,
        may_leech=not refusal,
        leech_refusal=refusal,
    )
    try:
        outcome = store.announce(torrent.torrent_id, ann, rules=policy.rules)
    except Refused as exc:
        raise Refusal(exc.reason) from None
    if outcome.refusal:
        raise Refusal(outcome.refusal)
    return outcome


def reply_interval(rules: Rules) -> int:
    """The ``interval`` to send (seconds): ``rules.interval`` plus up to 10% random jitter,
    which spreads the re-announces of peers that started together (BEP 3 ``interval``)."""
    return rules.interval + random.randint(0, rules.interval // 10)


def handle_announce(
    query: bytes,
    *,
    client_ip: str,
    path_passkey: str,
    auth: Authority,
    store: MemoryPeerStore,
    policy: Policy,
) -> bytes:
    """Answer one HTTP announce with bencoded bytes (never raises for client input).

    Args:
        query: the raw query string; client_ip: the socket address (or a trusted proxy's
            forwarded address); path_passkey: the passkey from ``/announce/<passkey>`` ('' for
            the ``?passkey=`` form).
    """
    try:
        req = parse_announce(query, passkey=path_passkey)
        outcome = announce_outcome(req, client_ip=client_ip, auth=auth, store=store, policy=policy)
    except Refusal as exc:
        return encode_failure(exc.reason)
    rules = policy.rules
    interval = reply_interval(rules)
    if outcome.peers is not None:
        return encode_announce_dicts(
            complete=outcome.complete,
            incomplete=outcome.incomplete,
            interval=interval,
            min_interval=rules.min_interval,
            peers=[_peer_tuple(peer_id, entry) for peer_id, entry in outcome.peers],
            no_peer_id=req.no_peer_id,
        )
    return encode_announce(
        complete=outcome.complete,
        incomplete=outcome.incomplete,
        interval=interval,
        min_interval=rules.min_interval,
        peers=outcome.peers4,
        peers6=outcome.peers6,
    )


def _peer_tuple(peer_id: bytes, entry: bytes) -> tuple[bytes, str, int]:
    ip = str(ipaddress.ip_address(entry[:-2]))
    return peer_id, ip, int.from_bytes(entry[-2:], "big")


def scrape_member(passkey: str, auth: Authority) -> MemberStanding:
    """The member a scrape is made for (BEP 48 on a private tracker needs a passkey).

    Raises:
        Refusal: unknown passkey or banned member.
    """
    member = auth.member(passkey) if PASSKEY_RE.fullmatch(passkey) else None
    if member is None:
        raise Refusal("Unknown passkey")
    if member.is_banned:
        raise Refusal("Account banned")
    return member


def scrape_counts(
    hashes: list[bytes],
    *,
    auth: Authority,
    store: MemoryPeerStore,
    snatches: Callable[[set[int]], dict[int, int]],
) -> dict[bytes, tuple[int, int, int]]:
    """The scrape rule shared by HTTP (BEP 48) and UDP (BEP 15): ``{info_hash: (complete,
    downloaded, incomplete)}`` for the registered torrents among ``hashes`` (20-byte
    info_hashes); unregistered ones are left out (a private tracker tells nothing of them).

    Args:
        snatches: callable ``{torrent_id} -> {torrent_id: downloaded count}``.
    """
    known = {}
    for info_hash in hashes:
        standing = auth.torrent(info_hash.hex())
        if standing is not None:
            known[info_hash] = standing.torrent_id
    if not known:
        return {}
    counts = store.counts(known.values())
    done = snatches(set(known.values()))
    return {h: (counts[t][0], done.get(t, 0), counts[t][1]) for h, t in known.items()}


def handle_scrape(
    query: bytes,
    *,
    path_passkey: str,
    auth: Authority,
    store: MemoryPeerStore,
    snatches: Callable[[set[int]], dict[int, int]],
) -> bytes:
    """Answer one BEP 48 scrape with bencoded bytes; only registered torrents are listed.

    Args:
        snatches: callable ``{torrent_id} -> {torrent_id: downloaded count}``.
    """
    try:
        hashes, passkey = parse_scrape(query, passkey=path_passkey)
        scrape_member(passkey, auth)
    except Refusal as exc:
        return encode_failure(exc.reason)
    return encode_scrape(scrape_counts(hashes, auth=auth, store=store, snatches=snatches))
