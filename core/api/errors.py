"""One place that maps domain errors to API responses (JSON with a field-level message)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: ``DomainError`` -> ``{"<field>": ["message"]}`` or
    ``{"detail": "message"}`` with the error's status; everything else as DRF does it."""
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)
