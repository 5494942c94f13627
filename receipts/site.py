"""This site's receipt parameters, read from settings: the realm id and the BLS backend.

One place for both, so the services, the API and the system checks agree.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from receipts import format as receipt_format
from receipts.bls import Backend, get_backend

BACKENDS = ("blst", "py_ecc")
"""Values allowed for ``PBTS_BLS_BACKEND``."""


def site_realm() -> bytes:
    """This site's 32-byte realm id, which every receipt accepted here must carry (hole 10).

    ``PBTS_REALM_ID`` (64 hex digits) when set; otherwise derived with
    :func:`receipts.format.realm_id` from ``PBTS_SITE_NAME`` and ``PBTS_BASE_URL``, both public,
    so a client can compute it too. ``SECRET_KEY`` is never used: the realm is public (clients
    sign it) and must outlive a secret rotation.

    Raises:
        ImproperlyConfigured: ``PBTS_REALM_ID`` is not 64 hex digits.
    """
    configured = settings.PBTS_REALM_ID.strip()
    if configured:
        try:
            realm = bytes.fromhex(configured)
        except ValueError:
            realm = b""
        if len(realm) != 32:
            raise ImproperlyConfigured("PBTS_REALM_ID must be 64 hex digits (32 bytes).")
        return realm
    return receipt_format.realm_id(settings.PBTS_SITE_NAME, settings.PBTS_BASE_URL)


def bls_backend() -> Backend:
    """The BLS backend named by ``PBTS_BLS_BACKEND``: ``"blst"`` (pyblst, fast, the default)
    or ``"py_ecc"`` (the pure-Python reference, about 2 verifications per second).

    Raises:
        ImproperlyConfigured: the setting names no known backend.
    """
    name = settings.PBTS_BLS_BACKEND
    if name not in BACKENDS:
        raise ImproperlyConfigured(f"PBTS_BLS_BACKEND must be one of {', '.join(BACKENDS)}.")
    return get_backend(name)
