"""Schemathesis against the site's OpenAPI schema (``/api/schema/``), as a member and as staff.

:func:`fuzz_site` serves a private site with gunicorn (two workers, ``settings_fuzz``: the
production settings without throttles) on a private PostgreSQL and Redis, with this site's
contracts on a private anvil so that the chain endpoints do real work instead of answering
503 "not configured"; :func:`run_schemathesis` runs the ``st`` command line against it and
returns its JSON report.

The gate is two checks: ``not_a_server_error`` (no 5xx) and ``response_schema_conformance``
(every documented response body matches its schema). ``POST /api/v1/me/token/reset/`` is
fuzzed last and on its own (it replaces the token the run authenticates with).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chain.devnet import Anvil
from tests.reliability.kit import PYTHON, PrivatePostgres, PrivateRedis, Proc, free_port
from tests.reliability.world import PrivateSite

GATE_CHECKS = "not_a_server_error,response_schema_conformance"
TOKEN_RESET = "token/reset"
ST = str(Path(PYTHON).parent / "st")


@dataclass
class FuzzSite:
    """A served site: its base URL and the member's and moderator's API tokens."""

    url: str
    tokens: dict[str, str]


@contextlib.contextmanager
def fuzz_site(pg: PrivatePostgres, redis: PrivateRedis, log_dir: Path) -> Iterator[FuzzSite]:
    """Serve a seeded private site (see the module doc) until the block ends."""
    anvil = Anvil().start()
    site = None
    try:
        site = PrivateSite(
            pg,
            redis,
            name=f"fuzz_{free_port()}",
            log_dir=log_dir,
            PBTS_CHAIN_RPC_URL=anvil.url,
            PBTS_CHAIN_PRIVATE_KEY=anvil.dev_private_key(0),
            PBTS_CHAIN_RECEIPT_TIMEOUT="10",
        )
        seed = site.sitectl("seed-api", torrents=3, chain=True)
        port = free_port()
        cmd = [str(Path(PYTHON).parent / "gunicorn"), "pbts_site.wsgi:application"]
        cmd += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60"]
        env = {**site.env, "DJANGO_SETTINGS_MODULE": "tests.reliability.settings_fuzz"}
        server = Proc("gunicorn", cmd, env, log_dir).start()
        site.procs.append(server)
        server.wait_listening(port)
        yield FuzzSite(
            url=f"http://127.0.0.1:{port}",
            tokens={"member": seed["member"]["token"], "staff": seed["staff"]["token"]},
        )
    finally:
        if site is not None:
            site.close()
        anvil.close()


def run_schemathesis(
    site: FuzzSite,
    role: str,
    report: Path,
    *,
    max_examples: int,
    seed: int = 14,
    checks: str = GATE_CHECKS,
    token_reset: bool = False,
    timeout: float = 1200.0,
) -> dict:
    """Run ``st run`` against ``site``'s schema with ``role``'s token; its JSON report
    (``test_cases``, ``failures``, ...) plus ``stdout``.

    Args:
        max_examples: test cases per operation in the fuzzing phase (the coverage phase
            adds its boundary cases on top).
        token_reset: fuzz only ``POST me/token/reset/`` (which invalidates the token);
            otherwise every other operation.
    """
    # The schema is read once, with a generous timeout (generating it takes several seconds on
    # a loaded 2-core box, more than st's own 10 s schema timeout), and handed to st as a file.
    schema = report.parent / f"schema-{role}.json"
    request = urllib.request.Request(
        f"{site.url}/api/schema/?format=json",
        headers={"Authorization": f"Token {site.tokens[role]}"},
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        schema.write_bytes(reply.read())
    cmd = [ST, "run", str(schema), "--url", site.url]
    cmd += ["-H", f"Authorization: Token {site.tokens[role]}"]
    cmd += ["--checks", checks, "--max-examples", str(max_examples), "--seed", str(seed)]
    cmd += ["--workers", "1", "--phases", "coverage,fuzzing", "--request-timeout", "30"]
    cmd += ["--include-path-regex" if token_reset else "--exclude-path-regex", TOKEN_RESET]
    cmd += ["--report", "json", "--report-json-path", str(report), "--no-color"]
    # In the report's directory: st keeps its replay cache (.schemathesis/) where it runs.
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=report.parent)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report:\n{result.stdout}{result.stderr}")
    data = json.loads(report.read_text())
    data["stdout"] = result.stdout
    return data


def failures(report: dict) -> list[str]:
    """One line per failure or error of a report ([] when clean)."""
    found = [
        f"{f.get('operation', '?')}: {f.get('title') or f.get('check') or f}"
        for f in report.get("failures", [])
    ]
    found += [f"error: {e}" for e in report.get("errors", [])]
    return found
