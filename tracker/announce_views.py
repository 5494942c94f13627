"""HTTP announce and scrape views: the hot path, no ORM once the cache is warm.

``/announce/<passkey>`` and ``/scrape/<passkey>`` (the form downloaded .torrent files use), and
the original PBTS form ``/announce?passkey=...``. Replies are bencoded with HTTP 200, refusals
included (BEP 3). The raw query string is read from WSGI's latin-1 ``QUERY_STRING`` so binary
``info_hash`` and ``peer_id`` values survive byte for byte.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from tracker import announce_runtime
from tracker.announce.wire_http import handle_announce, handle_scrape
from tracker.authority import CachedAuthority, snatch_counts

_authority = CachedAuthority()


def _reply(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


def _raw_query(request: HttpRequest) -> bytes:
    return request.META.get("QUERY_STRING", "").encode("latin-1", errors="replace")


@csrf_exempt
@require_GET
def announce(request: HttpRequest, passkey: str = "") -> HttpResponse:
    """BEP 3 announce; see ``tracker.announce.wire_http.handle_announce``."""
    return _reply(
        handle_announce(
            _raw_query(request),
            client_ip=announce_runtime.client_ip(request),
            path_passkey=passkey,
            auth=_authority,
            store=announce_runtime.peer_store(),
            policy=announce_runtime.policy(),
        )
    )


@csrf_exempt
@require_GET
def scrape(request: HttpRequest, passkey: str = "") -> HttpResponse:
    """BEP 48 scrape of one or more registered torrents."""
    return _reply(
        handle_scrape(
            _raw_query(request),
            path_passkey=passkey,
            auth=_authority,
            store=announce_runtime.peer_store(),
            snatches=snatch_counts,
        )
    )
