"""Who is asking: the client address every per-client limit uses (login lockouts, password
reset limits)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from core.forwarded import resolve_client_ip


def client_ip(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or, only when that is one of
    ``PBTS_TRUSTED_PROXIES``, the right-most ``X-Forwarded-For`` entry that is not itself a
    trusted proxy (:func:`core.forwarded.resolve_client_ip`, the rule the announce path
    follows), so a client cannot pick the address its failures are counted under."""
    return resolve_client_ip(
        request.META.get("REMOTE_ADDR", "") or "",
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        settings.PBTS_TRUSTED_PROXIES,
    )
