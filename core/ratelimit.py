"""A small fixed-window rate limit on the shared cache, for the few forms that send mail to
members (password reset). Logins are limited by django-axes (``core.auth``).

Not django-ratelimit: its last release (4.1, 2023) refuses the embedded default's
local-memory cache (system check error ``django_ratelimit.E003``) and warns on Django's own
Redis cache (``W001``, which fails ``check --deploy --fail-level WARNING``). The counter needs
only an atomic increment, which both of our caches have.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


def rate_limit_hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one request for ``key`` in ``scope`` and say whether it is within ``limit`` per
    window (fixed windows of ``window_seconds``, aligned on the epoch).

    The key is hashed (any text may be used, e.g. what a visitor typed). ``limit <= 0``
    means no limit. The count is kept even when over the limit, so hammering does not help.
    """
    if limit <= 0:
        return True
    window = int(time.time() // window_seconds)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"ratelimit:{scope}:{digest}:{window}"
    cache.add(cache_key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the entry expired between add and incr
        cache.add(cache_key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit
