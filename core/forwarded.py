"""Which address a request comes from, when proxies stand between (pure code, no Django
import: the announce path uses it too)."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection


def resolve_client_ip(remote: str, forwarded_for: str, trusted: Collection[str]) -> str:
    """The client's address: the socket address ``remote``, or, only when it is a trusted
    proxy, the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (RFC 7239
    practice). Nobody else's header is believed, so a client cannot pick its own address.

    Args:
        remote: the socket's peer address, as text.
        forwarded_for: the ``X-Forwarded-For`` header's value ("" when absent).
        trusted: the addresses of the proxies whose header is believed.
    """
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
