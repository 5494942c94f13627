"""Suite-wide fixtures. Tests use the machine's real PostgreSQL and Redis and fail loudly
when either cannot be reached (they never skip)."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.core.cache import cache


@pytest.fixture(scope="session", autouse=True)
def _services_reachable() -> None:
    """Fail the run at once if the configured Redis or PostgreSQL is not the real one."""
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql", (
        "tests must run against PostgreSQL; set DATABASE_URL"
    )
    assert settings.REDIS_URL, "tests must run against Redis; set REDIS_URL"
    redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Each test starts with an empty cache: the keys under this run's unique prefix are
    deleted (never FLUSHDB, so other users of the same Redis keep their data)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    cache.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A skipped test is reported as failed: the suite promises that nothing is skipped (a
    missing service, tool or data file must fail loudly, README)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, and this suite never skips: {reason}"


@pytest.fixture(autouse=True)
def _fresh_announce_policy() -> None:
    """Each test's first announce rebuilds the announce policy (settings and the run-time
    configuration row of this test's database, tracker.announce_runtime.PolicySource)."""
    from tracker import announce_runtime

    announce_runtime.policy.cache_clear()
