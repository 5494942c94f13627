"""Figures of the reliability tests, for ``bench/reliability.py`` and docs/reliability.md:
with ``RELIABILITY_FIGURES=PATH`` in the environment each test appends one JSON line
(``{"name": ..., figures...}``) to PATH; without it nothing is written."""

from __future__ import annotations

import json
import os


def record(name: str, **figures: object) -> None:
    """Append ``figures`` (JSON values: counts, bytes, seconds) under ``name``."""
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"name": name, **figures}) + "\n")
