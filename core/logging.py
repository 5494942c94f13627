"""Secrets never reach a log: :class:`SecretMaskFilter` masks them in every record.

Installed on every handler of ``settings.LOGGING`` (runserver's request lines, Django's request
errors, trackerd, Celery) and on gunicorn's error and access logs (``pbts_site/gunicorn.conf.py``
uses :class:`GunicornLogger`). It masks:

- passkeys: the path segment after ``/announce/`` or ``/scrape/`` (HTTP, and the BEP 41
  ``udp://`` URL data), and ``passkey=`` values;
- API tokens: ``Token <key>`` (the ``Authorization`` header) and ``token=`` values;
- invite codes: ``invite=`` values (``/register/?invite=``);
- one-time set-password links: the token in ``/password/reset/<uid>/<token>/``;
- feed keys: the path segment after ``/feeds/`` (``/feeds/<key>/rss/``).
"""

from __future__ import annotations

import logging
import re

MASK = "[masked]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # /announce/<passkey>, /scrape/<passkey> (also inside full or udp:// URLs).
    (re.compile(r"(/(?:announce|scrape)/)[^/?#\s\"'&]+"), rf"\g<1>{MASK}"),
    # passkey=..., token=..., invite=... in query strings and form bodies.
    (re.compile(r"(?i)\b((?:passkey|token|invite|api_token)=)[^&\s\"'#]+"), rf"\g<1>{MASK}"),
    # "passkey": "...", 'token': '...' in logged dicts and JSON.
    (
        re.compile(r"(?i)([\"'](?:passkey|token|api_token|key)[\"']\s*:\s*[\"'])[^\"']+"),
        rf"\g<1>{MASK}",
    ),
    # Authorization: Token <key>
    (re.compile(r"(?i)\b(Token\s+)[0-9a-f]{20,}"), rf"\g<1>{MASK}"),
    # /feeds/<feed key>/... (RSS/Atom feed URLs; /feeds/reset/ is a page, not a key).
    (re.compile(r"(/feeds/)(?!reset/)[^/?#\s\"'&]+"), rf"\g<1>{MASK}"),
    # /password/reset/<uidb64>/<token>/
    (re.compile(r"(/password/reset/[^/\s]+/)[^/\s?\"']+"), rf"\g<1>{MASK}"),
)


def mask_secrets(text: str) -> str:
    """``text`` with every passkey, API token, invite code and set-password token replaced by
    ``[masked]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretMaskFilter(logging.Filter):
    """A handler filter that masks secrets in the message and in the traceback text; it never
    drops a record. Handler filters see every record the handler writes, also those
    propagated from other loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message (format and arguments merged) and exception text with
        their masked forms."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave it to the formatter to report
            return True
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True
