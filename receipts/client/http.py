"""JSON over HTTP(S) with the standard library: token auth, timeouts, no redirects.

Redirects are refused rather than followed: urllib would resend the ``Authorization`` header to
wherever the redirect points.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from receipts.client.errors import ClientError

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "pbts-receipts-client/1"
MAX_ERROR_BODY = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def endpoint(site: str, *path: str) -> str:
    """``site`` (an http or https base URL) joined with the URL-quoted path segments.
    Raises ClientError("bad_site") for another scheme or a URL without a host."""
    parsed = urllib.parse.urlsplit(site)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ClientError("bad_site", f"--site must be an http(s) URL, got {site!r}")
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in path)
    return f"{site.rstrip('/')}/{quoted}"


def request_json(
    method: str, url: str, *, token: str, body: Any = None, timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, Any]:
    """Send ``body`` (JSON-able or None) with ``Authorization: Token <token>``; return
    (status, decoded JSON reply; None for an empty reply).

    Raises ClientError("http", status=..., response=...) for a 3xx/4xx/5xx reply,
    ClientError("network") when the site cannot be reached or times out after ``timeout``
    seconds, and ClientError("bad_response") for a reply that is not JSON.
    """
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    headers["User-Agent"] = USER_AGENT
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, _decode(response.read(), strict=True)
    except urllib.error.HTTPError as exc:
        reply = _decode(exc.read(MAX_ERROR_BODY), strict=False)
        raise ClientError(
            "http", f"{method} {url}: HTTP {exc.code}", status=exc.code, response=reply
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError("network", f"{method} {url}: {reason}") from None


def _decode(raw: bytes, *, strict: bool) -> Any:
    """JSON of a reply body; None when empty. Not JSON: ClientError("bad_response") if strict,
    else the text itself (error pages)."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        if strict:
            raise ClientError("bad_response", "the site did not answer JSON") from None
        return raw.decode("utf-8", "replace")
