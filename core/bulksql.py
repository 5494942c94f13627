"""Bulk SQL for the statistics flush and the ledger: one statement for many rows.

A batch's rows travel as a ``WITH v(...)`` clause: on PostgreSQL one ``bigint[]`` parameter
per column, unnested (a batch of any size is a handful of parameters); elsewhere (SQLite >= 3.33,
the embedded default) a ``VALUES`` list. Sums saturate at the largest BIGINT instead of
overflowing, so a client that claims absurd counters cannot make every later statement fail.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

MAX_BIGINT = 2**63 - 1


def values_cte(columns: Sequence[str], rows: Sequence[Sequence[int]]) -> tuple[str, list]:
    """``WITH v(columns) AS (...)`` holding ``rows`` and its parameters.

    Args:
        columns: SQL names of the columns, e.g. ``("member_id", "up")``.
        rows: integer tuples of ``len(columns)``; values above ``MAX_BIGINT`` are clamped.

    Returns:
        The clause (to prefix an UPDATE or INSERT ... SELECT) and its parameter list.
    """
    names = ", ".join(columns)
    clamped = [tuple(min(value, MAX_BIGINT) for value in row) for row in rows]
    if connection.vendor == "postgresql":
        arrays = ", ".join(["%s::bigint[]"] * len(columns))
        return f"WITH v({names}) AS (SELECT * FROM unnest({arrays}))", [
            list(column) for column in zip(*clamped, strict=True)
        ]
    one = "(" + ", ".join(["CAST(%s AS BIGINT)"] * len(columns)) + ")"
    return f"WITH v({names}) AS (VALUES {', '.join([one] * len(clamped))})", [
        value for row in clamped for value in row
    ]


def saturating_add(column: str, value: str) -> str:
    """SQL for ``column + value`` that stops at ``MAX_BIGINT`` (both non-negative)."""
    top = MAX_BIGINT
    return f"CASE WHEN {column} > {top} - {value} THEN {top} ELSE {column} + {value} END"
