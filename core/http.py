"""Who is asking: the client address every per-client limit uses (login lockouts, password
reset limits)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or, only when that is one of
    ``PBTS_TRUSTED_PROXIES``, the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy (the rule the announce path follows). Nobody else's header is believed, so a
    client cannot pick the address its failures are counted under."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    trusted = settings.PBTS_TRUSTED_PROXIES
    if remote not in trusted:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for candidate in reversed([part.strip() for part in forwarded.split(",")]):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break
        if candidate not in trusted:
            return candidate
    return remote
