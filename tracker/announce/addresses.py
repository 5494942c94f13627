"""Where an announcing peer is: the address rules (pure code, no Django import).

- The client's address is the socket's; ``X-Forwarded-For`` is believed only from a trusted
  proxy (``core.forwarded.resolve_client_ip``, RFC 7239 practice, shared with the site's
  login limits).
- A peer's entries are BEP 23's 6-byte IPv4 and BEP 7's 18-byte IPv6 compact forms
  (:func:`compact_address`): only the address the request came from. BEP 7's ``ipv4``/``ipv6``
  parameter is honoured only when it names that same address (it may then give the port for
  it); any other address is ignored, not refused (clients send it routinely): nothing proves
  the client owns it, and believing it let an IPv4 client put a third party's IPv6 address
  into swarms (issue 14) (:func:`peer_addresses`).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from tracker.announce.records import AnnounceRequest, Refusal

_V4_MAPPED = bytes(10) + b"\xff\xff"


@functools.lru_cache(maxsize=65536)
def _packed_address(ip: str) -> bytes:
    # inet_pton (C) first: the same strict forms as ``ipaddress`` (no leading zeros, four
    # dotted parts) at a fraction of its cost; anything it refuses (a scoped IPv6 address,
    # garbage) takes the ``ipaddress`` path, which accepts or raises ValueError as before.
    try:
        if ":" in ip:
            packed = socket.inet_pton(socket.AF_INET6, ip)
            return packed[12:] if packed.startswith(_V4_MAPPED) else packed
        return socket.inet_pton(socket.AF_INET, ip)
    except OSError:
        pass
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.packed


def compact_address(ip: str, port: int) -> tuple[bytes, bytes]:
    """``(compact4, compact6)`` of an address: one is its 6- or 18-byte BEP 23/7 entry, the
    other empty. IPv4-mapped IPv6 addresses count as IPv4.

    Raises:
        ValueError: ``ip`` is not an IP address.
    """
    packed = _packed_address(ip)
    entry = packed + port.to_bytes(2, "big")
    return (entry, b"") if len(packed) == 4 else (b"", entry)


def _same_address(text: str, packed: bytes) -> int | None:
    """The port a BEP 7 ``ipv4``/``ipv6`` parameter (``addr``, ``v4:port`` or ``[v6]:port``)
    gives for the address ``packed`` (0: the announce's own port), or ``None`` when it names
    another address, or is not an address or a valid port (then it is ignored)."""
    host, tail = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        tail = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, tail = text.partition(":")
    try:
        given = _packed_address(host)
        port = int(tail) if tail else 0
    except ValueError:
        return None
    if given != packed or not 0 <= port < 65536:
        return None
    return port


def peer_addresses(client_ip: str, req: AnnounceRequest) -> tuple[bytes, bytes]:
    """``(compact4, compact6)`` of the announcing peer: the address the request came from
    (``client_ip``: the socket's, or a trusted proxy's forwarded one), one entry of its family.

    BEP 7's ``ipv4``/``ipv6`` parameter counts only when it names that same address (a port it
    gives then replaces the announce's ``port`` for that entry); an address of the other
    family, or of anyone else, is ignored: the tracker cannot tell that the client owns it, so
    believing it would let a client list a third party in swarms. A dual-stack client is
    listed under each family it announces over.

    Raises:
        Refusal: ``client_ip`` is not an IP address.
    """
    try:
        packed = _packed_address(client_ip)
    except ValueError as exc:
        raise Refusal("Cannot tell your IP address") from exc
    port = req.port
    given = req.ipv4 if len(packed) == 4 else req.ipv6
    if given:
        port = _same_address(given, packed) or port
    entry = packed + port.to_bytes(2, "big")
    return (entry, b"") if len(packed) == 4 else (b"", entry)
