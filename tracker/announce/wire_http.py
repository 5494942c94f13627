"""The HTTP wire: announce/scrape query strings in, bencoded replies out.

Pure code, no Django import, shared by the Django view (``tracker.announce_views``) and
``trackerd``: :func:`handle_announce` and :func:`handle_scrape` parse a query string, call the
shared decisions (``rules.announce_outcome``, ``rules.scrape_counts``) and bencode the answer,
refusals included (a bencoded ``failure reason`` with HTTP 200, BEP 3). The query string is
parsed from its raw bytes because ``info_hash`` and ``peer_id`` are binary (BEP 3): each value
is percent-decoded to bytes, never to text.

Rules and their sources:
- BEP 3: announce parameters, ``failure reason``, ``interval``, non-compact peer dicts.
- BEP 7: ``peers6`` (18-byte IPv6 entries), ``ipv4``/``ipv6`` parameters.
- BEP 21: ``event=paused`` (a partial seed).
- BEP 23: compact peer lists (6-byte IPv4 entries), the default here.
- BEP 48: scrape with repeated ``info_hash``, the ``files`` dictionary.
"""

from __future__ import annotations

import codecs
import ipaddress
from collections.abc import Callable

from tracker.announce.query_scan import COMPILED as _SCAN_COMPILED
from tracker.announce.query_scan import scan_announce
from tracker.announce.records import (
    EVENT_BY_PARAM,
    INVALID_EVENT,
    INVALID_PORT,
    MAX_INT,
    MAX_QUERY_BYTES,
    REQUEST_TOO_LONG,
    AnnounceRequest,
    Refusal,
    invalid_counter,
)
from tracker.announce.rules import (
    Authority,
    Policy,
    announce_outcome,
    check_scrape_size,
    reply_interval,
    scrape_counts,
    scrape_member,
)
from tracker.announce.store import MemoryPeerStore

_escape_decode = codecs.escape_decode  # C; decodes the "\\xHH" that "%HH" is turned into
# ``find``, not ``b"%" in value``: CPython 3.11 raises and clears a TypeError for each bytes
# operand of ``in`` (``_Py_bytes_contains``), ~4 % of trackerd's instructions (callgrind).


def unquote(value: bytes) -> bytes:
    """Percent-decode ``value`` to bytes (RFC 3986 section 2.1; ``+`` is left alone, as BEP 3
    clients escape spaces). Done in C: every ``%HH`` becomes a ``\\xHH`` escape for
    :func:`codecs.escape_decode`, after doubling any backslash already there.

    Raises:
        Refusal: a ``%`` not followed by two hex digits.
    """
    if value.find(b"\\") >= 0:
        value = value.replace(b"\\", b"\\\\")
    try:
        return _escape_decode(value.replace(b"%", b"\\x"))[0]
    except ValueError:
        raise Refusal("Malformed query string: bad percent-encoding") from None


def split_query(query: bytes, *, repeatable: frozenset[bytes] = frozenset()) -> dict:
    """Split a raw query string into ``{name: value}`` (bytes) or ``{name: [values]}``.

    Names in ``repeatable`` collect every value (percent-decoded) into a list; other values
    stay percent-encoded until read (:func:`_value`), so unused ones cost nothing. Any other
    name given twice is refused, as are malformed percent-escapes and queries over
    ``MAX_QUERY_BYTES``.

    Raises:
        Refusal: malformed, oversize or repeated parameters.
    """
    if len(query) > MAX_QUERY_BYTES:
        raise Refusal(REQUEST_TOO_LONG)
    if query.find(b"%") >= 0:
        unquote(query)  # every escape checked at once, in C (values decode when read)
    parts = query.split(b"&")
    if not repeatable:  # fast path: no empty, escaped or repeated names
        params = {}
        for part in parts:
            name, _, value = part.partition(b"=")
            params[name] = value
        if len(params) == len(parts) and b"" not in params and b"&".join(params).find(b"%") < 0:
            return params
    params = {}
    for part in parts:
        if not part:
            continue
        name, _, value = part.partition(b"=")
        if name.find(b"%") >= 0:
            name = unquote(name)
        if name in repeatable:
            params.setdefault(name, []).append(unquote(value))
        elif name in params:
            raise Refusal(f"Parameter {name.decode('latin-1')!r} given twice")
        else:
            params[name] = value
    return params


def _value(params: dict, name: bytes) -> bytes | None:
    """A parameter's percent-decoded value (values are decoded when read, not when split)."""
    raw = params.get(name)
    return unquote(raw) if raw is not None and raw.find(b"%") >= 0 else raw


_FLAGS = {b"": None, b"0": False, b"1": True}


def _int(params: dict, name: bytes) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if len(raw) < 19 and raw.isdigit():  # at most 18 digits: below MAX_INT
        return int(raw)
    if raw.find(b"%") >= 0:
        raw = unquote(raw)
    if not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_INT:
        raise Refusal(invalid_counter(name.decode()))
    return int(raw)


def _required_int(params: dict, name: bytes) -> int:
    value = _int(params, name)
    if value is None:
        raise Refusal(f"Missing {name.decode()}")
    return value


def _hash20(params: dict, name: bytes) -> bytes:
    raw = params.get(name)
    if raw is None:
        raise Refusal(f"Missing {name.decode()}")
    if raw.find(b"%") >= 0:
        raw = unquote(raw)
    if len(raw) != 20:
        raise Refusal(f"Invalid {name.decode()}: must be 20 bytes, got {len(raw)}")
    return raw


def _flag(params: dict, name: bytes, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if (value := _value(params, name)) not in _FLAGS:
        raise Refusal(f"Invalid {name.decode()}: must be 0 or 1")
    flag = _FLAGS[value]
    return default if flag is None else flag


def _text(params: dict, name: bytes, limit: int) -> str:
    raw = _value(params, name) or b""
    if len(raw) > limit:
        raise Refusal(f"Invalid {name.decode()}: too long")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Refusal(f"Invalid {name.decode()}: not ASCII") from exc


def parse_announce(query: bytes, *, passkey: str = "") -> AnnounceRequest:
    """Parse a BEP 3 announce query string (raw bytes after ``?``).

    Args:
        query: the raw query string, percent-encoded as sent.
        passkey: the passkey from the URL path, if the path form ``/announce/<passkey>`` was
            used; otherwise the ``passkey`` parameter (the original PBTS form) is read.

    Raises:
        Refusal: any missing, repeated, oversize or malformed parameter, with a plain message.
    """
    if _SCAN_COMPILED:  # the common query in one C pass; anything else by the generic parser
        req = scan_announce(query, passkey)
        if req is not None:
            return req
    return parse_announce_generic(query, passkey=passkey)


def parse_announce_generic(query: bytes, *, passkey: str = "") -> AnnounceRequest:
    """:func:`parse_announce` without the one-pass scanner (``query_scan``): the rules of
    every parameter, and each refusal's wording (raises ``Refusal`` as that does)."""
    params = split_query(query)  # unknown parameters (corrupt, supportcrypto, ...) are ignored
    get = params.get
    info_hash = _hash20(params, b"info_hash")
    peer_id = _hash20(params, b"peer_id")
    port = _required_int(params, b"port")
    if not 1 <= port <= 65535:
        raise Refusal(INVALID_PORT)
    event = EVENT_BY_PARAM.get(get(b"event", b""))
    if event is None:
        event = EVENT_BY_PARAM.get(_value(params, b"event"))
        if event is None:
            raise Refusal(INVALID_EVENT)
    key = _value(params, b"key") or b""
    if len(key) > 64:
        raise Refusal("Invalid key: too long")
    return AnnounceRequest(
        info_hash,
        peer_id,
        port,
        _required_int(params, b"uploaded"),
        _required_int(params, b"downloaded"),
        _required_int(params, b"left"),
        event,
        _int(params, b"numwant"),
        _flag(params, b"compact", True) if b"compact" in params else True,
        _flag(params, b"no_peer_id", False) if b"no_peer_id" in params else False,
        key,
        passkey or _text(params, b"passkey", 64),
        _text(params, b"ipv4", 15) if b"ipv4" in params else "",
        _text(params, b"ipv6", 45) if b"ipv6" in params else "",
    )


def parse_scrape(query: bytes, *, passkey: str = "") -> tuple[list[bytes], str]:
    """Parse a BEP 48 scrape query: one or more ``info_hash`` values and the passkey.

    Returns ``(info_hashes, passkey)`` with duplicates removed, order kept. A scrape without
    ``info_hash`` (a full scrape) is refused on a private tracker.

    Raises:
        Refusal: no or malformed ``info_hash``, more than ``rules.MAX_SCRAPE_HASHES``.
    """
    params = split_query(query, repeatable=frozenset({b"info_hash"}))
    hashes = params.get(b"info_hash", [])
    check_scrape_size(len(hashes))
    for value in hashes:
        if len(value) != 20:
            raise Refusal(f"Invalid info_hash: must be 20 bytes, got {len(value)}")
    if not passkey:
        passkey = _text(params, b"passkey", 64)
    return list(dict.fromkeys(hashes)), passkey


# --- encoding ---------------------------------------------------------------------------


def _bstr(value: bytes) -> bytes:
    return b"%d:%s" % (len(value), value)


def encode_failure(reason: str, *, retry_in: int | None = None) -> bytes:
    """Bencode ``{"failure reason": reason}`` (BEP 3), plus BEP 31 ``retry in`` minutes."""
    body = b"d14:failure reason" + _bstr(reason.encode())
    if retry_in is not None:
        body += b"8:retry ini%de" % retry_in
    return body + b"e"


def encode_announce(
    *,
    complete: int,
    incomplete: int,
    interval: int,
    min_interval: int,
    peers: bytes,
    peers6: bytes = b"",
    warning: str = "",
) -> bytes:
    """Bencode a compact announce reply (BEP 3/23; ``peers6`` per BEP 7): ``complete`` and
    ``incomplete`` seeders and leechers, ``interval``/``min_interval`` seconds, ``peers`` the
    6-byte IPv4 entries, ``peers6`` the 18-byte IPv6 ones, ``warning`` sent when not empty."""
    out = [
        b"d8:completei%de10:incompletei%de8:intervali%de12:min intervali%de5:peers"
        % (complete, incomplete, interval, min_interval),
        _bstr(peers),
    ]
    if peers6:
        out += [b"6:peers6", _bstr(peers6)]
    if warning:
        out += [b"15:warning message", _bstr(warning.encode())]
    out.append(b"e")
    return b"".join(out)


def encode_announce_dicts(
    *,
    complete: int,
    incomplete: int,
    interval: int,
    min_interval: int,
    peers: list[tuple[bytes, str, int]],
    no_peer_id: bool,
    warning: str = "",
) -> bytes:
    """Bencode a non-compact reply (BEP 3): ``peers`` is a list of ``(peer_id, ip, port)``;
    the ``peer id`` key is left out when ``no_peer_id`` is set."""
    items = []
    for peer_id, ip, port in peers:
        entry = b"d2:ip" + _bstr(ip.encode())
        if not no_peer_id:
            entry += b"7:peer id" + _bstr(peer_id)
        items.append(entry + b"4:porti%dee" % port)
    out = [
        b"d8:completei%de10:incompletei%de8:intervali%de12:min intervali%de5:peersl"
        % (complete, incomplete, interval, min_interval),
        *items,
        b"e",
    ]
    if warning:
        out += [b"15:warning message", _bstr(warning.encode())]
    out.append(b"e")
    return b"".join(out)


def encode_scrape(files: dict[bytes, tuple[int, int, int]]) -> bytes:
    """Bencode a BEP 48 scrape reply. ``files`` maps a 20-byte info_hash to
    ``(complete, downloaded, incomplete)``; keys are emitted sorted, as bencode requires."""
    out = [b"d5:filesd"]
    for info_hash in sorted(files):
        complete, downloaded, incomplete = files[info_hash]
        out.append(
            _bstr(info_hash)
            + b"d8:completei%de10:downloadedi%de10:incompletei%dee"
            % (complete, downloaded, incomplete)
        )
    out.append(b"ee")
    return b"".join(out)


# --- the HTTP front end -----------------------------------------------------------------


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
