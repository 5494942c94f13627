"""The embedded default: a fresh checkout with no services configured migrates, seeds, ensures
the owner, serves, and answers /health; production settings pass ``check --deploy``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables the test settings put into this process's environment; a child must not inherit them.
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "PBTS_SECURE",
    "PBTS_CACHE_PREFIX",
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(extra)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fresh_sqlite_site_bootstraps_idempotently_and_serves_health(tmp_path):
    env = _env(DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    _manage("migrate", "--noinput", env=env)
    _manage("seed", env=env)
    _manage("seed", env=env)
    first = _manage("ensure_owner", env=env).stdout
    second = _manage("ensure_owner", env=env).stdout
    assert "password:" in first
    assert "password:" not in second

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the site did not answer /health within 30 s"
        assert body["status"] == "ok"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    assert server.returncode is not None


def test_boot_without_secret_key_and_debug_off_is_refused(tmp_path):
    env = _env(DEBUG="false", SECRET_KEY="", DATABASE_URL=f"sqlite:///{tmp_path / 'db'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_check_deploy():
    env = _env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="tracker.example.org",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/pbts",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert "no issues" in result.stdout
