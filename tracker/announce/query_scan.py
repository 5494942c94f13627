"""The common announce query in one pass: :func:`scan_announce`.

Pure code, no Django import. ``wire_http.parse_announce`` asks this scanner first; it returns
an :class:`~tracker.announce.records.AnnounceRequest` for the query every client sends (each
known parameter once, names unescaped, counters plain digits, ``info_hash`` and ``peer_id``
percent-encoded) and ``None`` for anything else: a missing, repeated, malformed or oversize
parameter, an escaped name, an empty part. The generic parser then decides such a query, with
its exact refusal, so the scanner holds no rule of its own: whatever it accepts, the generic
parser accepts with the same result (``tests/test_query_scan.py`` checks both on fuzzed
queries).

Compiled (``make speedups``), the scan is a C loop over the query's bytes with typed locals:
no split, no per-parameter ``bytes`` object, no dictionary, and each escape decoded as it is
read. Run from the sources it is plain Python (correct, and slower than the generic parser), so
``wire_http`` uses it only in the compiled build (:data:`COMPILED`).

Rules and their sources: BEP 3 (parameters; binary ``info_hash`` and ``peer_id``
percent-encoded, RFC 3986 section 2.1, ``+`` left alone), BEP 7 (``ipv4``/``ipv6``), BEP 21
(``event=paused``), BEP 23 (``compact``).
"""

from __future__ import annotations

import cython

from tracker.announce.records import EVENT_BY_PARAM, MAX_QUERY_BYTES, AnnounceRequest, Event

#: Whether this module runs compiled (a C loop) or from its source (plain Python).
COMPILED: bool = cython.compiled
_HASH_SIZE = 20  # info_hash and peer_id (BEP 3)
_DIGITS = 18  # at most 18 digits: below records.MAX_INT, as wire_http._int's fast path

# One bit per parameter the scanner reads (a second one sends the query to the generic parser).
_INFO_HASH, _PEER_ID, _PORT, _UPLOADED, _DOWNLOADED, _LEFT = 1, 2, 4, 8, 16, 32
_EVENT, _NUMWANT, _COMPACT, _NO_PEER_ID, _KEY, _PASSKEY, _IPV4, _IPV6 = (
    64,
    128,
    256,
    512,
    1024,
    2048,
    4096,
    8192,
)
_REQUIRED = _INFO_HASH | _PEER_ID | _PORT | _UPLOADED | _DOWNLOADED | _LEFT


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _hex(c: cython.uchar) -> cython.int:
    """The value of one hex digit (either case), or -1."""
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
def _is(
    q: cython.p_const_uchar, start: cython.Py_ssize_t, end: cython.Py_ssize_t, name: bytes
) -> cython.bint:
    """Whether ``q[start:end]`` is ``name``."""
    size: cython.Py_ssize_t = len(name)
    k: cython.Py_ssize_t
    if end - start != size:
        return False
    for k in range(size):  # noqa: SIM110 - a loop compiles to C; all() over a generator does not
        if q[start + k] != name[k]:
            return False
    return True


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
def _digits(
    q: cython.p_const_uchar, start: cython.Py_ssize_t, end: cython.Py_ssize_t
) -> cython.longlong:
    """The counter ``q[start:end]`` (1 to 18 plain digits), or -1."""
    value: cython.longlong = 0
    k: cython.Py_ssize_t
    c: cython.uchar
    if end <= start or end - start > _DIGITS:
        return -1
    for k in range(start, end):
        c = q[k]
        if c < 48 or c > 57:
            return -1
        value = value * 10 + (c - 48)
    return value


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
def _hash20(q: cython.p_const_uchar, start: cython.Py_ssize_t, end: cython.Py_ssize_t) -> object:
    """The 20 bytes ``q[start:end]`` percent-decodes to, or ``None`` (another length; the
    escapes were checked by the scan)."""
    out = bytearray(_HASH_SIZE)
    o: cython.p_uchar = out
    j: cython.Py_ssize_t = 0
    k: cython.Py_ssize_t = start
    while k < end:
        if j == _HASH_SIZE:
            return None
        if q[k] == 37:  # '%'
            o[j] = _hex(q[k + 1]) * 16 + _hex(q[k + 2])
            k += 3
        else:
            o[j] = q[k]
            k += 1
        j += 1
    return bytes(out) if j == _HASH_SIZE else None


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
def _ascii(
    query: bytes, start: cython.Py_ssize_t, end: cython.Py_ssize_t, limit: cython.int
) -> object:
    """``query[start:end]`` percent-decoded, as text, when that is at most ``limit`` ASCII
    bytes (BEP 7's ``ipv6=2001%3Adb8%3A%3A1``), or ``None`` (the escapes were checked by the
    scan)."""
    q: cython.p_const_uchar = query
    k: cython.Py_ssize_t = start
    j: cython.Py_ssize_t = 0
    c: cython.int
    if query.find(b"%", start, end) < 0:  # the usual case: nothing to decode
        if end - start > limit:
            return None
        for k in range(start, end):
            if q[k] > 127:
                return None
        return query[start:end].decode("ascii")
    out = bytearray(end - start)
    o: cython.p_uchar = out
    while k < end:
        if q[k] == 37:  # '%'
            c = _hex(q[k + 1]) * 16 + _hex(q[k + 2])
            k += 3
        else:
            c = q[k]
            k += 1
        if c > 127 or j == limit:
            return None
        o[j] = c
        j += 1
    return out[:j].decode("ascii")


@cython.cfunc
@cython.boundscheck(False)
@cython.wraparound(False)
def _flag(q: cython.p_const_uchar, start: cython.Py_ssize_t, end: cython.Py_ssize_t) -> cython.int:
    """A 0/1 flag's value: 0, 1, 2 for an empty value (the default), or -1."""
    if end == start:
        return 2
    if end - start == 1 and (q[start] == 48 or q[start] == 49):
        return q[start] - 48
    return -1


@cython.boundscheck(False)
@cython.wraparound(False)
def scan_announce(query: bytes, passkey: str) -> AnnounceRequest | None:
    """The announce of the raw query string ``query`` (BEP 3, the bytes after ``?``), or
    ``None`` when the generic parser must decide it (see the module's docstring).

    Args:
        query: the query as sent, percent-encoded.
        passkey: the passkey of the path form (``/announce/<passkey>``), or ``''`` to read the
            ``passkey`` parameter.
    """
    n: cython.Py_ssize_t = len(query)
    q: cython.p_const_uchar = query
    i: cython.Py_ssize_t = 0
    start: cython.Py_ssize_t
    eq: cython.Py_ssize_t
    end: cython.Py_ssize_t
    c: cython.uchar
    seen: cython.uint = 0
    bit: cython.uint
    port: cython.longlong = 0
    uploaded: cython.longlong = 0
    downloaded: cython.longlong = 0
    left: cython.longlong = 0
    numwant: cython.longlong = -1
    compact: cython.int = 2
    no_peer_id: cython.int = 2
    info_hash = peer_id = key = given_passkey = None
    ipv4 = ipv6 = ""
    event = Event.NONE
    others = None
    if n == 0 or n > MAX_QUERY_BYTES:
        return None
    while i <= n:
        start = i
        eq = -1
        while i < n:  # one part: its name, '=', its value; every escape checked
            c = q[i]
            if c == 38:  # '&'
                break
            if c == 37:  # '%'
                if i + 2 >= n or _hex(q[i + 1]) < 0 or _hex(q[i + 2]) < 0 or eq < 0:
                    return None  # a malformed escape, or an escaped name
                i += 2
            elif c == 61 and eq < 0:  # the first '='
                eq = i
            i += 1
        end = i
        i += 1
        if eq < 0:
            eq = end  # a name alone: an empty value
        if eq == start:
            return None  # an empty part or name
        if _is(q, start, eq, b"info_hash"):
            bit = _INFO_HASH
            info_hash = _hash20(q, eq + 1, end)
            if info_hash is None:
                return None
        elif _is(q, start, eq, b"peer_id"):
            bit = _PEER_ID
            peer_id = _hash20(q, eq + 1, end)
            if peer_id is None:
                return None
        elif _is(q, start, eq, b"port"):
            bit = _PORT
            port = _digits(q, eq + 1, end)
            if port < 1 or port > 65535:
                return None
        elif _is(q, start, eq, b"uploaded"):
            bit = _UPLOADED
            uploaded = _digits(q, eq + 1, end)
            if uploaded < 0:
                return None
        elif _is(q, start, eq, b"downloaded"):
            bit = _DOWNLOADED
            downloaded = _digits(q, eq + 1, end)
            if downloaded < 0:
                return None
        elif _is(q, start, eq, b"left"):
            bit = _LEFT
            left = _digits(q, eq + 1, end)
            if left < 0:
                return None
        elif _is(q, start, eq, b"event"):
            bit = _EVENT
            event = EVENT_BY_PARAM.get(query[eq + 1 : end])
            if event is None:
                return None
        elif _is(q, start, eq, b"numwant"):
            bit = _NUMWANT
            numwant = _digits(q, eq + 1, end)
            if numwant < 0:
                return None
        elif _is(q, start, eq, b"compact"):
            bit = _COMPACT
            compact = _flag(q, eq + 1, end)
            if compact < 0:
                return None
        elif _is(q, start, eq, b"no_peer_id"):
            bit = _NO_PEER_ID
            no_peer_id = _flag(q, eq + 1, end)
            if no_peer_id < 0:
                return None
        elif _is(q, start, eq, b"key"):
            bit = _KEY
            if end - eq - 1 > 64 or query.find(b"%", eq + 1, end) >= 0:
                return None
            key = query[eq + 1 : end]
        elif _is(q, start, eq, b"passkey"):
            bit = _PASSKEY
            if not passkey:  # the path's passkey wins; the parameter is not read then
                given_passkey = _ascii(query, eq + 1, end, 64)
                if given_passkey is None:
                    return None
        elif _is(q, start, eq, b"ipv4"):
            bit = _IPV4
            ipv4 = _ascii(query, eq + 1, end, 15)
            if ipv4 is None:
                return None
        elif _is(q, start, eq, b"ipv6"):
            bit = _IPV6
            ipv6 = _ascii(query, eq + 1, end, 45)
            if ipv6 is None:
                return None
        else:  # a parameter the tracker ignores (corrupt, supportcrypto, ...), once
            bit = 0
            name = query[start:eq]
            if others is None:
                others = {name}
            elif name in others:
                return None
            else:
                others.add(name)
        if seen & bit:
            return None  # given twice
        seen |= bit
    if seen & _REQUIRED != _REQUIRED:
        return None
    return AnnounceRequest(
        info_hash,
        peer_id,
        port,
        uploaded,
        downloaded,
        left,
        event,
        None if numwant < 0 else numwant,
        compact != 0,
        no_peer_id == 1,
        key or b"",
        passkey or given_passkey or "",
        ipv4,
        ipv6,
    )
