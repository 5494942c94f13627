"""No passkey, API token, invite code or set-password token reaches a log (issue 14).

The end-to-end tests serve a fresh SQLite site as ``make run`` does (``manage.py runserver``,
DEBUG on and off) and as the Docker image does (gunicorn with its access log on, reading
``gunicorn.conf.py``), send announces, scrapes and API calls that carry the secrets, and grep
everything the server printed."""

from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.logging import MASK, SecretMaskFilter, mask_secrets

ROOT = Path(__file__).resolve().parent.parent
PASSKEY = "0123456789abcdef0123456789abcdef"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
# Variables the test settings put into this process's environment; a child must not inherit them.
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "PBTS_SECURE",
    "PBTS_CACHE_PREFIX",
    "DEBUG",
    "PBTS_ENV_FILE",
    "PBTS_BASE_URL",
    "LOG_LEVEL",
)


# --- the filter -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'"GET /announce/{PASSKEY}?info_hash=%AA&port=1 HTTP/1.1" 200 52', PASSKEY),
        (f'"GET /scrape/{PASSKEY}?info_hash=%AA HTTP/1.1" 200 52', PASSKEY),
        (f"GET /announce?passkey={PASSKEY}&port=1", PASSKEY),
        (f"udp://tracker.example:6969/announce/{PASSKEY}", PASSKEY),
        (f"Not Found: /announce/{PASSKEY}/x", PASSKEY),
        (f"Authorization: Token {TOKEN}", TOKEN),
        (f"{{'passkey': '{PASSKEY}', 'token': '{TOKEN}'}}", PASSKEY),
        (f'{{"token": "{TOKEN}"}}', TOKEN),
        ("GET /register/?invite=Zx8_secret-invite-code HTTP/1.1", "Zx8_secret-invite-code"),
        ("GET /password/reset/MQ/cv8qzx-0a1b2c3d4e5f6a7b8c9d/ HTTP/1.1", "cv8qzx-0a1b2c3d4e5f"),
        (f"https://tracker.example/announce/{PASSKEY.upper()}", PASSKEY.upper()),
    ],
)
def test_mask_secrets(line, secret):
    masked = mask_secrets(line)
    assert secret not in masked and MASK in masked


def test_plain_lines_are_untouched():
    for line in ('"GET /torrents/?q=linux HTTP/1.1" 200 5120', "/password/reset/sent/", "ok"):
        assert mask_secrets(line) == line


def test_the_filter_masks_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMaskFilter())
    logger = logging.getLogger("pbts.test.mask")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("announce %s from %s", f"/announce/{PASSKEY}", "10.0.0.1")
        try:
            raise KeyError(f"unknown passkey={PASSKEY}")
        except KeyError:
            logger.exception("failed with Token %s", TOKEN)
        logger.info("access %(r)s", {"r": f"GET /scrape/{PASSKEY}"})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert PASSKEY not in text and TOKEN not in text
    assert "10.0.0.1" in text and "KeyError" in text and text.count(MASK) >= 4


# --- real servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, port: int, debug: bool) -> dict[str, str]:
    env_file = tmp_path / f"{port}.env"
    env_file.write_text(
        f"DEBUG={'true' if debug else 'false'}\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        "PBTS_SECURE=false\n"
        f"PBTS_BASE_URL=http://127.0.0.1:{port}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        PBTS_ENV_FILE=str(env_file),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PBTS_UDP_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A migrated SQLite site with a member: ``(directory, createmember's output)``."""
    tmp_path = tmp_path_factory.mktemp("logsite")
    env = _env(tmp_path, 0, debug=True)
    for args in (["migrate", "--noinput"], ["createmember", "alice", "--email", "a@example.org"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
    created = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return tmp_path, created


def _request(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()
            return reply.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def _wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within 60 s")


def _exercise(base: str, created: dict[str, str]) -> list[int]:
    """Requests that carry every kind of secret in their URLs and headers."""
    passkey, token = created["passkey"], created["token"]
    info_hash = "%AA" * 20
    query = f"info_hash={info_hash}&peer_id=-qB5000-abcdefghijkl&port=6881&uploaded=0"
    query += "&downloaded=0&left=0&compact=1"
    auth = {"Authorization": f"Token {token}"}
    return [
        _request(f"{base}/announce/{passkey}?{query}"),
        _request(f"{base}/announce?passkey={passkey}&{query}"),
        _request(f"{base}/scrape/{passkey}?info_hash={info_hash}"),
        _request(f"{base}/announce/{passkey}/extra"),  # 404, logged by django.request
        _request(f"{base}/api/v1/me/", auth),
        _request(f"{base}/api/v1/members/", auth),  # 403, logged as a warning
        _request(f"{base}/api/v1/me/?token={token}"),
        _request(f"{base}/register/?invite=Zx8-secret-invite-code"),
        _request(base + urlsplit(created["set_password_url"]).path),
    ]


def _secrets(created: dict[str, str]) -> list[str]:
    reset_token = created["set_password_url"].rstrip("/").rsplit("/", 1)[1]
    return [created["passkey"], created["token"], reset_token, "Zx8-secret-invite-code"]


def _serve_and_grep(command: list[str], env: dict[str, str], tmp_path: Path, base: str, created):
    log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            _wait_for(f"{base}/health", server)
            statuses = _exercise(base, created)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    output = log_path.read_text()
    assert statuses[4] == 200 and statuses[5] == 403 and statuses[3] == 404, statuses
    leaked = [secret for secret in _secrets(created) if secret in output]
    assert leaked == [], output
    return output


@pytest.mark.parametrize("debug", [True, False], ids=["make-run", "debug-off"])
def test_runserver_logs_no_secret(site, tmp_path, debug):
    directory, created = site
    port = _free_port()
    env = _env(directory, port, debug=debug)
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    output = _serve_and_grep(command, env, tmp_path, base, created)
    # The request lines were logged, masked.
    assert f'"GET /announce/{MASK}?info_hash=' in output
    assert f"/scrape/{MASK}?info_hash=" in output
    assert f"Not Found: /announce/{MASK}/extra" in output
    assert f"passkey={MASK}" in output


def test_gunicorn_logs_no_secret(site, tmp_path):
    directory, created = site
    port = _free_port()
    env = _env(directory, port, debug=False)
    base = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [
        gunicorn,
        "pbts_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        "--workers",
        "1",
    ]
    output = _serve_and_grep(command, env, tmp_path, base, created)
    assert f"/announce/{MASK}?info_hash=" in output  # gunicorn's access log, masked
    assert f"Not Found: /announce/{MASK}/extra" in output  # Django's log in the worker


def test_the_celery_worker_masks_its_handlers():
    from pbts_site.celery import mask_secrets_in_worker_logs

    stream = io.StringIO()
    logger = logging.getLogger("pbts.test.celery")
    logger.addHandler(logging.StreamHandler(stream))
    logger.propagate = False
    mask_secrets_in_worker_logs(logger)
    mask_secrets_in_worker_logs(logger)  # idempotent
    logger.warning("task failed for /announce/%s", PASSKEY)
    assert stream.getvalue() == f"task failed for /announce/{MASK}\n"
    assert len(logger.handlers[0].filters) == 1
