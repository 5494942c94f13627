"""Where an announcing peer is: the address rules (pure code, no Django import).

- The client's address is the socket's; ``X-Forwarded-For`` is believed only from a trusted
  proxy (:func:`resolve_client_ip`, RFC 7239 practice).
- A peer's entries are BEP 23's 6-byte IPv4 and BEP 7's 18-byte IPv6 compact forms
  (:func:`compact_address`); a dual-stack client's ``ipv4``/``ipv6`` parameter of the *other*
  family is added when it is a global address, never instead of the socket's
  (:func:`peer_addresses`).
"""

from __future__ import annotations

import functools
import ipaddress

from tracker.announce.records import AnnounceRequest, Refusal


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
    """``(compact4, compact6)`` of an address: one is its 6- or 18-byte BEP 23/7 entry, the
    other empty. IPv4-mapped IPv6 addresses count as IPv4.

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
    address of the other family a dual-stack client names (never instead of the socket's).

    Raises:
        Refusal: ``client_ip`` is not an IP address.
    """
    try:
        compact4, compact6 = compact_address(client_ip, req.port)
    except ValueError as exc:
        raise Refusal("Cannot tell your IP address") from exc
    if compact4 and req.ipv6:
        compact6 = _other_family(req.ipv6, req.port, 6)
    elif compact6 and req.ipv4:
        compact4 = _other_family(req.ipv4, req.port, 4)
    return compact4, compact6
