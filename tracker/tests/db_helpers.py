"""A second PostgreSQL session on the test database, for tests of locks and concurrent
transactions (another worker, another statement waiting on a lock)."""

from __future__ import annotations

import psycopg
from django.db import connection


def other_session(*, autocommit: bool = False) -> psycopg.Connection:
    """A new psycopg connection to the database Django's ``connection`` uses (the test
    database); the caller closes it."""
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
        autocommit=autocommit,
    )
