"""Domain errors raised by services; each front end maps them once to its own form.

The DRF exception handler turns them into JSON with a field-level message, page views into form
errors, and the announce path into a bencoded ``failure reason``.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the operation. ``field`` names the input at fault, when there is one."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The input is malformed or breaks a rule (HTTP 400)."""


class Conflict(DomainError):
    """The input duplicates something that exists (HTTP 409)."""

    status_code = 409


class NotPermitted(DomainError):
    """The caller may not do this (HTTP 403)."""

    status_code = 403


class NotFound(DomainError):
    """The object does not exist or the caller may not see it (HTTP 404)."""

    status_code = 404
