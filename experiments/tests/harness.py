"""Run the harness in child processes, as a developer would, for the tests."""

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


class HarnessRun:
    """``run_experiments.py args`` started at once from the repository root, with ``env``
    added to this process's environment, writing into ``out``. Runs started together share
    the box's cores with each other rather than only with other programs."""

    def __init__(self, args: list[str], *, out: Path, env: dict[str, str]) -> None:
        self.out = out
        self._stdout: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args, "--out", str(out)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stdout(self, timeout: float = 300) -> str:
        """Wait for the run; its stdout. Fails (AssertionError) on a non-zero exit."""
        if self._stdout is None:
            out, err = self.process.communicate(timeout=timeout)
            code = self.process.returncode
            assert code == 0, f"exit {code}\n{out}\n{err}"
            self._stdout = out
        return self._stdout

    def stop(self) -> None:
        """Kill the run if it is still going (a test failed before waiting for it)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a CSV file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows
