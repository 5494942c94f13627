"""The one exception of the client library; the CLI prints it as JSON and exits with 1."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """A failure to report to the user: ``code`` is a short machine-readable name ("http",
    "network", "bad_key_file", "invalid_signature", ...), ``details`` extra JSON-able fields."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """{"error": code, "message": message, **details}."""
        return {"error": self.code, "message": self.message, **self.details}
