"""Run the harness in a child process, as a developer would, for the tests."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "run_experiments.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LATENCY = [
    "keygen_bls",
    "keygen_tee",
    "attest_api",
    "attest_tee_quote",
    "register_e2e",
    "receipt_sign",
    "receipt_verify",
    "receipt_batch_verify",
    "receipt_aggregate",
    "receipt_aggregate_verify",
]
TEE_ROWS = {"keygen_tee", "attest_tee_quote"}


def run_harness(args: list[str], *, env: dict[str, str], timeout: float = 240) -> str:
    """Run ``run_experiments.py args`` from the repository root with ``env`` added to this
    process's environment; return its stdout. Fails (AssertionError) on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a CSV file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows
