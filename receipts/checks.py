"""System checks (``manage.py check``): the receipt settings are usable at start-up."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from receipts.site import bls_backend, site_realm


@checks.register()
def receipt_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``PBTS_REALM_ID`` is empty or 64 hex digits; ``PBTS_BLS_BACKEND`` names a backend that
    imports (``blst`` needs pyblst)."""
    errors: list[checks.CheckMessage] = []
    try:
        site_realm()
    except (ImproperlyConfigured, ValueError) as exc:
        errors.append(checks.Error(str(exc), id="receipts.E001"))
    try:
        bls_backend()
    except (ImproperlyConfigured, ImportError, ValueError) as exc:
        errors.append(
            checks.Error(str(exc), hint="Use PBTS_BLS_BACKEND=py_ecc.", id="receipts.E002")
        )
    return errors
