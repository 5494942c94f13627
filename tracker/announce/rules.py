"""The tracker's rules, once, whatever the wire (pure code, no Django import).

:func:`announce_outcome` decides one parsed announce (authorize -> address -> update the swarm
-> select peers) and :func:`scrape_counts` one scrape, for every front end: the HTTP wire
(``wire_http.handle_announce``, used by the Django view and trackerd) and the UDP tracker
(``udp_tracker.UdpTracker``, BEP 15). :func:`settle` is the one crediting rule, used by the
swarm for every announce and by the Redis layer when it settles a conflicting change again.

Rules and their sources:

- Authorization: a known passkey of a member not banned, a whitelisted client (peer_id prefix,
  BEP 20), a port not used by other P2P networks, a registered (approved) torrent.
- Address (``addresses``): the socket's; ``X-Forwarded-For`` only from trusted proxies; BEP
  7's ``ipv4``/``ipv6`` only when it names that same address (any other is ignored).
- Credit: per-peer deltas since that peer's last announce, never the client's totals; a lower
  counter is a client restart (Ocelot/opentracker practice); freeleech and double upload apply;
  seeding time accumulates between a seeder's announces (capped per gap); a snatch is a
  finished download, counted once.
- Duplicates: the same peer and event within ``DUPLICATE_WINDOW`` seconds (a dual-stack
  client's IPv4 and IPv6 legs) is answered, not refused, and credits nothing twice.
- ``min interval`` (BEP 3 replies carry it): an announce sooner is refused unless ``completed``
  or ``stopped``; at most ``max_peers_per_member`` peers per member per torrent.
- Ratio (``reputation.policy``): leeching is refused below the minimum ratio; the refused
  leecher is still credited for what it did.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from reputation.policy import leech_verdict
from tracker.announce.addresses import peer_addresses
from tracker.announce.records import (
    COMPLETED,
    FULL_SCRAPE,
    PAUSED,
    STOPPED,
    Announce,
    AnnounceRequest,
    Credit,
    MemberStanding,
    Outcome,
    PeerState,
    Refusal,
    TorrentStanding,
    too_many_hashes,
)

if TYPE_CHECKING:
    from tracker.announce.store import MemoryPeerStore
    from tracker.announce.swarm import Swarm

DUPLICATE_WINDOW = 5.0  # seconds
PASSKEY_RE = re.compile(r"[0-9a-f]{32}")
#: Ports of other P2P networks that private trackers refuse (Ocelot practice): Direct Connect,
#: Kazaa, eMule, Gnutella, WinMX. ``PBTS_BLACKLISTED_PORTS`` replaces them.
DEFAULT_BLACKLISTED_PORTS = frozenset({411, 412, 413, 1214, 4662, 6346, 6347, 6699})
#: At most this many info_hashes per scrape (BEP 48); a BEP 15 packet holds fewer
#: (``wire_udp.PACKET_SCRAPE_HASHES``).
MAX_SCRAPE_HASHES = 128
UNKNOWN_PASSKEY = "Unknown passkey"
BANNED = "Account banned"
HNR_DISABLED = (
    "Downloading disabled: too many hit-and-runs. Seed your snatches (see History on the site);"
    " seeding still works"
)


@dataclass(frozen=True, slots=True)
class Rules:
    """Swarm rules for one announce: ``interval``/``min_interval``/``max_seed_gap`` in seconds;
    ``max_peers`` caps ``numwant``, ``default_numwant`` replaces a missing one;
    ``max_credit_rate`` (bytes per second, ``PBTS_MAX_CREDIT_RATE``) bounds what one announce
    credits: at most this x the seconds since the peer's last announce, each way;
    ``sitewide_freeleech`` (set by staff at run time, ``POST /config``) credits no download on
    any torrent, as a torrent's own freeleech does."""

    interval: int = 1800
    min_interval: int = 900
    max_peers: int = 50
    default_numwant: int = 50
    max_peers_per_member: int = 3
    max_seed_gap: int = 3600
    max_credit_rate: int = 125_000_000
    sitewide_freeleech: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """Site rules for announces: the swarm ``rules``, the ratio rule's figures (``grace_bytes``
    downloaded before it applies) and the refused ports."""

    rules: Rules = field(default_factory=Rules)
    min_ratio: float = 0.5
    grace_bytes: int = 5 * 1024**3
    blacklisted_ports: frozenset[int] = frozenset()


class Authority(Protocol):
    """Cached answers the rules ask for; every method must be cheap (no query per call once
    warm). ``tracker.authority`` has the two implementations (shared cache, process memory)."""

    def member(self, passkey: str) -> MemberStanding | None:
        """The standing of the active member owning ``passkey`` (32 hex), or ``None``."""
        ...

    def torrent(self, info_hash_hex: str) -> TorrentStanding | None:
        """The standing of the approved torrent with this 40-hex info_hash, or ``None``."""
        ...

    def client_allowed(self, peer_id: bytes) -> bool:
        """Whether the 20-byte ``peer_id`` starts with a whitelisted prefix (BEP 20)."""
        ...


# --- authorization ------------------------------------------------------------------------


def authorize(
    req: AnnounceRequest, auth: Authority, policy: Policy
) -> tuple[MemberStanding, TorrentStanding]:
    """The member and torrent of an announce, if it may be made.

    Raises:
        Refusal: unknown passkey, banned member, client not on the whitelist (BEP 20),
            blacklisted port, unregistered torrent.
    """
    if not PASSKEY_RE.fullmatch(req.passkey):
        raise Refusal(UNKNOWN_PASSKEY)
    member = auth.member(req.passkey)
    if member is None:
        raise Refusal(UNKNOWN_PASSKEY)
    if member.is_banned:
        raise Refusal(BANNED)
    if not auth.client_allowed(req.peer_id):
        raise Refusal("Client not allowed")
    if req.port in policy.blacklisted_ports:
        raise Refusal(f"Port {req.port} is blacklisted")
    torrent = auth.torrent(req.info_hash.hex())
    if torrent is None:
        raise Refusal("Unregistered torrent")
    return member, torrent


def leech_refusal(member: MemberStanding, policy: Policy) -> str:
    """Why ``member`` may not leech now (staff switch, the hit-and-run rule, or the ratio
    rule of ``reputation.policy``), or ``""``."""
    if not member.can_download:
        return "Downloading disabled by staff"
    if member.hnr_disabled:
        return HNR_DISABLED
    verdict = leech_verdict(
        uploaded=member.uploaded,
        downloaded=member.downloaded,
        min_ratio=policy.min_ratio,
        grace_bytes=policy.grace_bytes,
        exempt=member.is_ratio_exempt,
    )
    return verdict.reason


# --- the swarm rules ----------------------------------------------------------------------


def is_duplicate(prev: PeerState | None, ann: Announce, now: float) -> bool:
    """Same peer, same event within ``DUPLICATE_WINDOW`` seconds (``now`` in seconds): the
    second leg of a dual-stack client's announce (IPv4 and IPv6), answered, not refused."""
    return (
        prev is not None
        and ann.request.event is prev.event
        and now - prev.announced_at < DUPLICATE_WINDOW
    )


def check_admission(
    swarm: Swarm,
    ann: Announce,
    prev: PeerState | None,
    *,
    now: float,
    rules: Rules,
    member_peers: int = -1,
) -> None:
    """Whether ``swarm`` takes this announce (BEP 3 ``min interval``; the per-member limit).

    Args:
        prev: the peer's last state (``None``: a new peer); now: seconds; member_peers: the
            member's peers in ``swarm`` when the caller counted them (``Swarm.find``), -1 to
            count them here.

    Raises:
        Refusal: an announce inside ``min interval``, unless ``stopped``, a duplicate, or the
            one ``completed`` that finishes the download (``left`` from above 0 to 0, as BEP 3
            clients send it at once): a ``completed`` that finishes nothing gets no pass (it
            was a way to announce, and be credited, at will); a new peer beyond
            ``max_peers_per_member``.
    """
    req = ann.request
    event = req.event
    if prev is not None:
        too_soon = not is_duplicate(prev, ann, now) and now - prev.announced_at < rules.min_interval
        finishing = event is COMPLETED and prev.left > 0 and req.left == 0
        if too_soon and event is not STOPPED and not finishing:
            raise Refusal("Announce too soon")
    elif event is not STOPPED:
        if member_peers < 0:
            member_peers = swarm.count_member(ann.member_id)
        if member_peers < rules.max_peers_per_member:
            return
        raise Refusal(
            f"Too many peers: at most {rules.max_peers_per_member} per member per torrent"
        )


def _delta(new: int, old: int) -> int:
    """Bytes since the last announce; a lower counter means the client restarted from 0."""
    return new - old if new >= old else new


def credit_bound(*, seconds: float, rate: int) -> int:
    """The most bytes one announce may credit each way: ``rate`` (bytes per second) x the
    ``seconds`` since the peer's last announce, at least one second's worth."""
    return int(max(seconds, 1.0) * rate)


def settle(
    prev: PeerState | None, ann: Announce, *, now: float, rules: Rules
) -> tuple[Credit, PeerState | None]:
    """The one rule for crediting an announce against the peer's last state ``prev``.

    Returns the credit and the peer's new state (``None`` when the peer leaves the swarm:
    ``stopped``, or a leecher that may not leech). Deltas are safe against repeats: a
    duplicate carries the same counters, so it credits nothing; each way a delta is bounded by
    :func:`credit_bound` (``Credit.clamped`` says so, for moderators); ``Credit.leeching``
    records that the peer leeched (``left > 0``), the evidence a receipt's downloader needs; a
    snatch needs ``left > 0`` before and ``completed`` or ``left == 0`` now (aria2 with
    ``--seed-time=0`` sends only ``stopped``). The swarm (``swarm.apply_announce``) and the
    Redis layer's reconciliation of a conflicting change both use it.
    """
    req = ann.request
    event = req.event
    credit = Credit()
    if prev is not None:
        up = _delta(req.uploaded, prev.uploaded)
        down = _delta(req.downloaded, prev.downloaded)
        bound = credit_bound(seconds=now - prev.announced_at, rate=rules.max_credit_rate)
        if up > bound or down > bound:  # a client claiming more than the wire can carry
            credit.clamped = True
            up, down = min(up, bound), min(down, bound)
        torrent = ann.torrent
        credit.uploaded = up * 2 if torrent.is_double_upload else up
        credit.downloaded = 0 if torrent.is_freeleech or rules.sitewide_freeleech else down
        if prev.is_seeder:
            credit.seed_seconds = int(min(max(now - prev.announced_at, 0), rules.max_seed_gap))
        credit.snatched = prev.left > 0 and (event is COMPLETED or req.left == 0)
    leeching = req.left > 0 and event is not PAUSED
    credit.leeching = leeching
    if event is STOPPED or (leeching and ann.leech_refusal):
        return credit, None
    merge = prev is not None and is_duplicate(prev, ann, now)
    state = PeerState(  # positional: keywords to a dataclass cost ~3x (a kwargs dict)
        ann.member_id,
        req.peer_id,
        ann.compact4 or (prev.compact4 if merge else b""),
        ann.compact6 or (prev.compact6 if merge else b""),
        req.uploaded,
        req.downloaded,
        req.left,
        event,
        now,  # announced_at
    )
    return credit, state


# --- the decisions --------------------------------------------------------------------------


def announce_outcome(
    req: AnnounceRequest,
    *,
    client_ip: str,
    auth: Authority,
    store: MemoryPeerStore,
    policy: Policy,
) -> Outcome:
    """Decide one parsed announce: authorize -> address -> update the swarm -> select peers.

    The one implementation of the announce rules, shared by every front end: the HTTP wire
    (``wire_http.handle_announce``) parses a query string into ``req`` and bencodes the result;
    the UDP tracker (``udp_tracker``, BEP 15) builds ``req`` from a packet.

    Args:
        req: the parsed announce (``passkey`` included; ``compact`` picks ``Outcome.peers4``/
            ``peers6`` over ``Outcome.peers``).
        client_ip: the socket address (or a trusted proxy's forwarded address), as text.
        store: the process's peer store, which accumulates the credit.

    Returns:
        The swarm's :class:`Outcome` (credit already accumulated in ``store``; counts; the
        chosen peers).

    Raises:
        Refusal: unknown passkey, banned, client not allowed, blacklisted port, unregistered
            torrent, announce too soon, too many peers, downloading disabled by ratio or
            staff (BEP 3 ``failure reason``). A leecher refused by the ratio rule is still
            credited for what it did since its last announce.
    """
    member, torrent = authorize(req, auth, policy)
    compact4, compact6 = peer_addresses(client_ip, req)
    refusal = leech_refusal(member, policy) if req.left > 0 else ""
    ann = Announce(req, member.member_id, compact4, compact6, torrent, refusal)
    outcome = store.announce(ann, rules=policy.rules)
    if outcome.refusal:
        raise Refusal(outcome.refusal)
    return outcome


_random = random.random  # C; random.randint runs three interpreted frames per call


def reply_interval(rules: Rules) -> int:
    """The ``interval`` to send (seconds): ``rules.interval`` plus up to 10% random jitter,
    which spreads the re-announces of peers that started together (BEP 3 ``interval``)."""
    return rules.interval + int(_random() * (rules.interval // 10 + 1))


def check_scrape_size(count: int, limit: int = MAX_SCRAPE_HASHES) -> None:
    """A scrape names 1 to ``limit`` info_hashes (``count``); none is a full scrape, which a
    private tracker refuses (BEP 48).

    Raises:
        Refusal: ``count`` is 0 or above ``limit``.
    """
    if not count:
        raise Refusal(FULL_SCRAPE)
    if count > limit:
        raise Refusal(too_many_hashes(limit))


def scrape_member(passkey: str, auth: Authority) -> MemberStanding:
    """The member a scrape is made for (BEP 48 on a private tracker needs a passkey).

    Raises:
        Refusal: unknown passkey or banned member.
    """
    member = auth.member(passkey) if PASSKEY_RE.fullmatch(passkey) else None
    if member is None:
        raise Refusal(UNKNOWN_PASSKEY)
    if member.is_banned:
        raise Refusal(BANNED)
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
