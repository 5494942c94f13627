"""``GET /health``: liveness and readiness of one process, for load balancers and monitors.

A plain Django view (no DRF, no authentication). It checks the database (``SELECT 1``) and the
cache (set then get of a random value) and answers 200 when both work, 503 otherwise. The body
names each check's outcome but never an exception's text; failures are logged instead.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tomllib
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

OK = "ok"
ERROR = "error"
_CACHE_KEY_PREFIX = "health:"
_CACHE_SECONDS = 30

_instance: tuple[int, str] | None = None


def instance_id() -> str:
    """An id for this process, stable for its lifetime: ``<host>-<pid>-<random>``.

    Computed on first use in each process, so workers forked from a preloaded parent each get
    their own id.
    """
    global _instance
    pid = os.getpid()
    if _instance is None or _instance[0] != pid:
        _instance = (pid, f"{socket.gethostname()}-{pid}-{secrets.token_hex(4)}")
    return _instance[1]


@memoize
def site_version() -> str:
    """The project's version from ``pyproject.toml`` (``"unknown"`` if it cannot be read)."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def check_database() -> bool:
    """Run ``SELECT 1`` on the default database; ``True`` when it answers 1."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
    except Exception:
        logger.exception("health: database check failed")
        return False
    return row is not None and row[0] == 1


def check_cache() -> bool:
    """Store a random value in the default cache and read it back; ``True`` when it matches."""
    key = f"{_CACHE_KEY_PREFIX}{instance_id()}"
    value = secrets.token_hex(8)
    try:
        cache.set(key, value, _CACHE_SECONDS)
        ok = cache.get(key) == value
    except Exception:
        logger.exception("health: cache check failed")
        return False
    if not ok:
        logger.error("health: cache check read back a different value")
    return ok


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Answer ``{"status", "database", "cache", "instance_id", "version"}``; 503 on failure."""
    checks = {
        "database": OK if check_database() else ERROR,
        "cache": OK if check_cache() else ERROR,
    }
    healthy = all(result == OK for result in checks.values())
    body = {
        "status": OK if healthy else ERROR,
        **checks,
        "instance_id": instance_id(),
        "version": site_version(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
