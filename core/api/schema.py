"""OpenAPI descriptions of the error bodies every app's API answers (``core.api.errors``):
a field-level ``{"<field>": ["message", ...]}`` (400) and a ``{"detail": "message"}``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid input: {"<field>": ["message", ...]}.'
)
DETAIL = OpenApiResponse(OpenApiTypes.OBJECT, description='{"detail": "message"}.')
