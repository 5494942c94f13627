"""Shared by the chain commands: print JSON, turn service errors into CommandError."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import CommandError

from chain.client import ChainError
from core.errors import DomainError

T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; chain and domain errors become a CommandError with their message (never
    the key or the RPC URL)."""
    try:
        return fn()
    except ChainError as exc:
        raise CommandError(f"{exc.status}: {exc.message}") from None
    except DomainError as exc:
        raise CommandError(exc.message) from None


def dumps(document: Any) -> str:
    """Pretty JSON."""
    return json.dumps(document, indent=2, default=str)
