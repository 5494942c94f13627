"""The records every announce module shares, one per idea (pure code, no Django import).

An announce travels as these records from either wire to the statistics flush:

- :class:`AnnounceRequest`: what the client sent (``wire_http`` parses a query string into it,
  ``wire_udp`` a BEP 15 packet);
- :class:`Announce`: that request once authorized (``rules.announce_outcome``): the request
  itself, the member, the peer's addresses, the torrent's standing, the leech verdict;
- :class:`PeerState`: a peer's last announce as the stores keep it (``swarm``, ``redis_sync``);
- :class:`Credit`: what one announce credits, summed per (member, torrent) into a
  :class:`StatsBatch`, which ``tracker.services.stats`` writes to the database;
- :class:`Outcome`: what the swarm answers (counts, chosen peers), encoded by the wire.

A refusal is one exception type, :class:`Refusal`, whatever raises it; its words are sent as
HTTP's bencoded ``failure reason`` (BEP 3) or a BEP 15 error packet. The texts both wires send
are defined here once. An announce's ``event`` is the :class:`Event` enum.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

MAX_INT = 2**63 - 1  # the largest counter accepted (bytes), either wire

PeerKey = tuple[int, bytes]  # (member_id, 20-byte peer_id)
StatsKey = tuple[int, int]  # (member_id, torrent_id)


class Refusal(Exception):
    """An announce or scrape is refused; ``reason`` (plain words) is what the client sees: the
    bencoded ``failure reason`` over HTTP (BEP 3), the error packet's message over UDP (BEP 15).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Pending(Exception):
    """The authority must read the database before it can answer, and the caller is an event
    loop that must not wait for it (trackerd): ``future`` (a ``concurrent.futures.Future``)
    completes when the answer is loaded; await it off the loop, then ask again. Raised before
    anything is changed (authorization comes first), so asking again is safe."""

    def __init__(self, future) -> None:
        super().__init__("authority lookup pending")
        self.future = future


# --- refusal texts both wires send --------------------------------------------------------

REQUEST_TOO_LONG = "Request too long"
MAX_QUERY_BYTES = 4096  # the longest HTTP query string taken (longer: REQUEST_TOO_LONG)
INVALID_PORT = "Invalid port: must be 1-65535"
INVALID_EVENT = "Invalid event"
FULL_SCRAPE = "Full scrape is not allowed: give info_hash"


def invalid_counter(name: str) -> str:
    """The refusal of a counter (``uploaded``, ``downloaded``, ``left``, ...) that is not an
    integer from 0 to :data:`MAX_INT`."""
    return f"Invalid {name}: must be an integer from 0 to {MAX_INT}"


def too_many_hashes(limit: int) -> str:
    """The refusal of a scrape of more than ``limit`` info_hashes."""
    return f"Too many info_hash values (at most {limit})"


# --- events -------------------------------------------------------------------------------


class Event(StrEnum):
    """An announce's ``event``: BEP 3's ``started``, ``completed``, ``stopped`` or none, and
    BEP 21's ``paused`` (a partial seed). The value is the HTTP parameter's text; the
    definition order gives the one-byte code kept with a peer (:data:`EVENT_CODE`, in swarm
    records and Redis states); BEP 15 numbers them otherwise (``wire_udp.UDP_EVENTS``)."""

    NONE = ""
    STARTED = "started"
    COMPLETED = "completed"
    STOPPED = "stopped"
    PAUSED = "paused"


#: Stored code -> event, and event -> stored code (one byte; see :class:`Event`).
EVENT_BY_CODE: tuple[Event, ...] = tuple(Event)
EVENT_CODE: dict[Event, int] = {event: code for code, event in enumerate(EVENT_BY_CODE)}
#: The HTTP ``event`` parameter's bytes -> event (BEP 3, BEP 21).
EVENT_BY_PARAM: dict[bytes, Event] = {event.value.encode(): event for event in Event}
# Module-level names: an enum member read through its class costs a lookup per use.
STOPPED, COMPLETED, PAUSED = Event.STOPPED, Event.COMPLETED, Event.PAUSED


# --- peers --------------------------------------------------------------------------------

MEMBER_ID = struct.Struct(">I")
PEER_KEY_SIZE = 24


def peer_key(member_id: int, peer_id: bytes) -> bytes:
    """A peer's 24-byte key: member_id (4 bytes, big-endian) then its 20-byte peer_id. The one
    packing of a peer's identity: swarm records and index, and the Redis hash field."""
    return MEMBER_ID.pack(member_id) + peer_id


def split_peer_key(key: bytes) -> PeerKey:
    """``(member_id, peer_id)`` of a 24-byte :func:`peer_key`."""
    return MEMBER_ID.unpack_from(key)[0], key[4:]


@dataclass(frozen=True, slots=True)
class MemberStanding:
    """What authorization needs of a member; ``uploaded``/``downloaded`` are the ledger's
    totals in bytes (the ratio rule); ``hnr_disabled``: downloading disabled by the
    hit-and-run rule (``tracker.services.hnr``), apart from the staff switch ``can_download``."""

    member_id: int
    is_banned: bool
    can_download: bool
    is_ratio_exempt: bool
    uploaded: int = 0
    downloaded: int = 0
    hnr_disabled: bool = False


@dataclass(frozen=True, slots=True)
class TorrentStanding:
    """What authorization and accounting need of a registered (approved) torrent."""

    torrent_id: int
    is_freeleech: bool
    is_double_upload: bool


@dataclass(slots=True)
class AnnounceRequest:
    """An announce as the client sent it, from either wire (BEP 3 parameters; BEP 15 fields).

    Counters are bytes; ``numwant`` ``None`` means the default; ``key`` is checked but not kept
    (the passkey and peer_id identify a peer); ``ipv4``/``ipv6`` are BEP 7's addresses as
    text (``""``: none), honoured only when they name the request's own address."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int
    event: Event
    numwant: int | None
    compact: bool
    no_peer_id: bool
    key: bytes
    passkey: str
    ipv4: str
    ipv6: str


@dataclass(slots=True)
class Announce:
    """An authorized announce as the swarm applies it: the client's ``request``, the member
    it belongs to, the peer's BEP 23/7 entries (``compact4`` 6 bytes, ``compact6`` 18 bytes,
    empty when it has no such address; the socket's, never the client's word), the torrent's
    standing (its id, freeleech, double upload) and ``leech_refusal``: why this member may not
    leech now (``""``: it may)."""

    request: AnnounceRequest
    member_id: int
    compact4: bytes
    compact6: bytes
    torrent: TorrentStanding
    leech_refusal: str = ""


@dataclass(slots=True)
class PeerState:
    """A peer's last announce as the stores keep it. ``compact4``/``compact6`` are its BEP
    23/7 entries (6/18 bytes, empty when none); counters are bytes; ``announced_at`` seconds."""

    member_id: int
    peer_id: bytes
    compact4: bytes
    compact6: bytes
    uploaded: int
    downloaded: int
    left: int
    event: Event
    announced_at: float

    @property
    def is_seeder(self) -> bool:
        """A peer with nothing left to download (BEP 21 partial seeds count as seeders)."""
        return self.left == 0 or self.event is PAUSED


@dataclass(slots=True)
class Credit:
    """What announces credit a member on a torrent: bytes uploaded and downloaded after
    freeleech and double upload, seconds seeding, and whether a download completed (a
    snatch). Two marks travel with it: ``leeching`` (an announce with ``left > 0``: the swarm
    presence a receipt's downloader needs) and ``clamped`` (a delta was cut to the rate bound:
    moderators see the member flagged). One announce's credit, or a sum (:meth:`add`)."""

    uploaded: int = 0
    downloaded: int = 0
    seed_seconds: int = 0
    snatched: bool = False
    leeching: bool = False
    clamped: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.uploaded or self.downloaded or self.seed_seconds or self.snatched or self.clamped
        )

    def add(self, other: Credit) -> None:
        """Add ``other`` to this sum (a snatch, and each mark, stays one)."""
        self.uploaded += other.uploaded
        self.downloaded += other.downloaded
        self.seed_seconds += other.seed_seconds
        self.snatched = self.snatched or other.snatched
        self.leeching = self.leeching or other.leeching
        self.clamped = self.clamped or other.clamped

    @property
    def flags(self) -> int:
        """The booleans as bits: 1 snatched, 2 leeching, 4 clamped (packed records)."""
        return self.snatched | self.leeching << 1 | self.clamped << 2

    @classmethod
    def from_flags(cls, uploaded: int, downloaded: int, seed_seconds: int, flags: int) -> Credit:
        """The inverse of :attr:`flags` for a packed record's fields."""
        return cls(
            uploaded, downloaded, seed_seconds, bool(flags & 1), bool(flags & 2), bool(flags & 4)
        )


def add_credit(credits: dict[StatsKey, Credit], key: StatsKey, credit: Credit) -> None:
    """Add ``credit`` to ``credits[key]`` (a copy is stored, never ``credit`` itself): the one
    place credits are summed, in a store and when a Redis batch is read."""
    total = credits.get(key)
    if total is None:
        credits[key] = Credit(
            credit.uploaded,
            credit.downloaded,
            credit.seed_seconds,
            credit.snatched,
            credit.leeching,
            credit.clamped,
        )
    else:
        total.add(credit)


@dataclass(slots=True)
class StatsBatch:
    """Credits taken out of a store for one flush: ``credits`` maps (member_id, torrent_id) to
    their summed :class:`Credit`; ``swarm_counts`` maps torrent_id to ``(seeders, leechers)``
    for torrents whose counts changed. ``batch_id`` makes applying it idempotent."""

    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    credits: dict[StatsKey, Credit] = field(default_factory=dict)
    swarm_counts: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.credits or self.swarm_counts)


@dataclass(slots=True)
class Outcome:
    """What the swarm answers one announce (``swarm.apply_announce``): the credit, the counts
    after it, and the peer's state before and after (``None`` when absent). A compact announce
    gets ``peers4``/``peers6`` (BEP 23/7 strings), a non-compact one ``peers`` as
    ``[(peer_id, entry)]``. ``refusal`` is a refused leecher's reason (it was still credited)."""

    credit: Credit
    complete: int
    incomplete: int
    refusal: str = ""
    prev: PeerState | None = None
    state: PeerState | None = None
    peers4: bytes = b""
    peers6: bytes = b""
    peers: list[tuple[bytes, bytes]] | None = None

    @property
    def counts_changed(self) -> bool:
        """Whether the swarm's seeder or leecher count changed."""
        prev, state = self.prev, self.state
        if prev is None or state is None:
            return prev is not state
        return prev.is_seeder != state.is_seeder
