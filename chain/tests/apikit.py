"""API clients of the chain endpoint tests (``/contract/...`` and the migration API)."""

from __future__ import annotations

from rest_framework.test import APIClient

from tracker.models import Member
from tracker.services.members import member_api_token


def api_for(member: Member | None = None) -> APIClient:
    """An API client authenticated with ``member``'s token (anonymous when ``None``)."""
    client = APIClient()
    if member is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client
