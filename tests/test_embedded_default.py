"""The embedded default: a fresh checkout with no services configured writes its local .env,
migrates, seeds, ensures the owner, creates a member who can set a password, serves, and answers
/health; production settings pass ``check --deploy``."""

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

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Variables the test settings put into this process's environment; a child must not inherit them.
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "PBTS_SECURE",
    "PBTS_REDIS_PREFIX",
    "DEBUG",
    "PBTS_ENV_FILE",
    "PBTS_BASE_URL",
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


def _local_env(path: Path, *base_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/local_env.py", str(path), *base_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def test_local_env_file_gets_a_fresh_secret_key_and_is_never_overwritten(tmp_path):
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    assert "Wrote" in _local_env(first).stdout
    _local_env(second)
    keys = []
    for path in (first, second):
        text = path.read_text()
        assert "DEBUG=true" in text.splitlines()
        keys.append(text.split("SECRET_KEY=", 1)[1].splitlines()[0])
        assert path.stat().st_mode & 0o777 == 0o600
    assert len(keys[0]) >= 50 and keys[0] != keys[1]
    before = first.read_text()
    assert _local_env(first).stdout == ""
    assert first.read_text() == before


RUN_EVERY_PERIODIC_TASK = """
from django.conf import settings
from core.embedded_beat import run_task
for entry in settings.CELERY_BEAT_SCHEDULE.values():
    run_task(entry["task"])
    print(entry["task"])
"""


def test_fresh_sqlite_site_bootstraps_idempotently_and_serves_health(tmp_path):
    # What `make run` leaves behind: a local .env (with the address it serves on), then every
    # manage.py command works with no variable exported (the embedded default: no services).
    port = _free_port()
    _local_env(tmp_path / ".env", f"http://127.0.0.1:{port}")
    env = _env(
        PBTS_ENV_FILE=str(tmp_path / ".env"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    _manage("migrate", "--noinput", env=env)
    _manage("seed", env=env)
    _manage("seed", env=env)
    first = _manage("ensure_owner", env=env).stdout
    second = _manage("ensure_owner", env=env).stdout
    assert "password:" in first
    assert "password:" not in second
    created = _manage("createmember", "newbie", "--email", "newbie@example.org", env=env).stdout
    lines = dict(line.split("=", 1) for line in created.splitlines())
    assert set(lines) == {"passkey", "token", "set_password_url"}
    assert lines["set_password_url"].startswith(f"http://127.0.0.1:{port}/password/reset/")

    # Every periodic task of the beat schedule works on SQLite (the embedded beat runs them).
    ran = _manage("shell", "-c", RUN_EVERY_PERIODIC_TASK, env=env).stdout.split()
    assert "tracker.evaluate_hit_and_runs" in ran and "tracker.award_bonus" in ran

    # `make run` serves with `manage.py serve`: runserver plus the embedded beat.
    out = tmp_path / "serve.out"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=out.open("w"),
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
        # The printed link opens the set-password form (Django keeps the token in the session
        # and redirects to a token-free URL, so the client keeps cookies).
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(lines["set_password_url"], timeout=10) as reply:
            page = reply.read().decode()
        assert "new_password1" in page and "new_password2" in page
        deadline = time.monotonic() + 10
        while "Periodic tasks" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Periodic tasks" in out.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    assert server.returncode is not None


@pytest.mark.parametrize("debug", ["false", "true"])
def test_boot_without_secret_key_is_refused_with_the_way_out(tmp_path, debug):
    # No fixed development key exists: without SECRET_KEY nothing boots, DEBUG or not.
    env = _env(
        DEBUG=debug,
        SECRET_KEY="",
        PBTS_ENV_FILE=str(tmp_path / "missing.env"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db'}",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set: run `make run` once" in result.stderr


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
