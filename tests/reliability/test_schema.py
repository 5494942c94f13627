"""Schemathesis against ``/api/schema/`` of a served site (gunicorn on a private PostgreSQL and
Redis, the chain configured on a private anvil), as a member and as staff: no server error
(5xx) and no response that breaks the schema. A bounded run (few examples per operation, fixed
seed); the full run is ``bench/reliability.py --schema``."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.reliability.figures import record
from tests.reliability.fuzz import failures, fuzz_site, run_schemathesis

MAX_EXAMPLES = 3


@pytest.fixture(scope="module")
def served(private_pg, tmp_path_factory):
    from tests.reliability.kit import PrivateRedis

    redis = PrivateRedis().start()
    try:
        with fuzz_site(private_pg, redis, tmp_path_factory.mktemp("fuzz")) as site:
            yield site
    finally:
        redis.close()


@pytest.mark.parametrize("role", ["member", "staff"])
def test_api_fuzzing_finds_no_server_error_and_no_schema_violation(served, role, tmp_path):
    # The staff token really opens the staff endpoints (its owner has two-factor
    # authentication, as PBTS_STAFF_REQUIRE_2FA asks): staff operations are fuzzed, not 403.
    request = urllib.request.Request(
        f"{served.url}/api/v1/members/", headers={"Authorization": f"Token {served.tokens[role]}"}
    )
    try:
        status = urllib.request.urlopen(request, timeout=60).status
    except urllib.error.HTTPError as err:
        status = err.code
    assert status == (200 if role == "staff" else 403)
    report = run_schemathesis(served, role, tmp_path / "report.json", max_examples=MAX_EXAMPLES)
    assert failures(report) == [], report["stdout"][-4000:]
    assert report["operations"]["tested"] >= 30
    assert report["test_cases"]["generated"] > 500
    # Last: the token reset (it replaces the token the run authenticates with).
    reset = run_schemathesis(
        served, role, tmp_path / "reset.json", max_examples=MAX_EXAMPLES, token_reset=True
    )
    assert failures(reset) == [], reset["stdout"][-4000:]
    assert reset["operations"]["tested"] == 1
    record(
        f"schema-{role}",
        operations=report["operations"]["tested"] + 1,
        cases=report["test_cases"]["generated"] + reset["test_cases"]["generated"],
        failures=0,
        max_examples=MAX_EXAMPLES,
    )
