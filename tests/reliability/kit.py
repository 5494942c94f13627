"""Private services and the site's processes over them, for the reliability suite and
``bench/reliability.py``.

Everything here runs on loopback ports of servers this module starts itself: a private Redis
(``redis-server`` on a free port, its files in a temp dir) and a private PostgreSQL cluster
(``initdb`` + ``pg_ctl`` as the ``postgres`` OS user, socket and data in a temp dir). The
machine's shared PostgreSQL (5432) and Redis (6379) are never touched: other people's test
runs use them, and the point of these tests is to restart and kill servers. Every process is
started with ``start_new_session`` and stopped by its own PID.

The site's processes (``manage.py trackerd``, a Celery worker, ``manage.py migrate``, the
test-only ``tests.reliability.sitectl``) get an environment built from scratch by
:func:`site_env`: production settings (``pbts_site.settings``) pointed at the private
servers, no ``.env`` file read, nothing inherited from the test settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SECRET_KEY = "reliability-only-" + secrets.token_urlsafe(40)
# Variables of the caller's environment that would change what a child measures.
_DROPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "MIN_RATIO",
    "MAX_PEERS",
    "CONN_MAX_AGE",
    "ALLOWED_HOSTS",
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], object], *, timeout: float, what: str, every: float = 0.1):
    """Poll ``check()`` every ``every`` seconds until it returns a truthy value (returned);
    exceptions count as "not yet".

    Raises:
        TimeoutError: not true within ``timeout`` seconds (the last exception is chained).
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s") from last
        time.sleep(every)


# --- Redis ---------------------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` of our own on a free loopback port, its files in a temp dir.

    Args:
        appendonly: keep an append-only file (``appendfsync everysec``, as the production
            compose file runs Redis), so a restart keeps the data; without it a restart
            starts empty (no RDB snapshots either: ``--save ""``).
    """

    def __init__(self, *, appendonly: bool = False) -> None:
        self.appendonly = appendonly
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pbts-rel-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 10.0) -> PrivateRedis:
        """Start the server (same port and dir as before) and wait until it answers PING.

        Raises:
            TimeoutError: it did not answer within ``timeout`` seconds.
        """
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--dir", str(self.dir), "--daemonize", "no"]
        cmd += ["--appendonly", "yes" if self.appendonly else "no", "--protected-mode", "no"]
        with open(self.dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(lambda: self.client().ping(), timeout=timeout, what="private redis")
        return self

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown: the append-only file is flushed) or SIGKILL, by PID."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def url(self, db: int = 0) -> str:
        """``redis://`` URL of database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        """A new client (bytes replies)."""
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def close(self) -> None:
        """Stop the server and delete its files."""
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- PostgreSQL ----------------------------------------------------------------------------


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (the newest installed major version).

    Raises:
        FileNotFoundError: no PostgreSQL server binaries under /usr/lib/postgresql.
    """
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise FileNotFoundError(f"no /usr/lib/postgresql/*/bin/{name}: install postgresql")
    return str(found[-1])


def _as_postgres(*args: str) -> list[str]:
    """Run as the ``postgres`` OS user when we are root (PostgreSQL refuses to run as root).
    ``runuser`` lives in /usr/sbin, which a minimal PATH may leave out.

    Raises:
        FileNotFoundError: we are root and there is no ``runuser``.
    """
    if os.geteuid() != 0:
        return list(args)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    runuser = shutil.which("runuser", path=search)
    if runuser is None:
        raise FileNotFoundError("runuser not found (util-linux): needed to run PostgreSQL as root")
    return [runuser, "-u", "postgres", "--", *args]


class PrivatePostgres:
    """A PostgreSQL cluster of our own: data and socket in a temp dir owned by ``postgres``,
    listening on a free 127.0.0.1 port, trust authentication for user ``postgres``.

    ``fsync`` is off (speed; a restart of the server process loses nothing with it off: the
    operating system keeps the written pages).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pbts-rel-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.initialized = False

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        result = subprocess.run(
            _as_postgres(*args), capture_output=True, text=True, timeout=timeout, cwd=self.dir
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> PrivatePostgres:
        """Create the cluster on first use, then start the server and wait until it accepts
        connections."""
        if not self.initialized:
            self._run(
                pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            self.initialized = True
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        wait_until(lambda: self.sql("postgres", "SELECT 1"), timeout=30, what="private postgres")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions and disconnect clients;
        ``immediate``: a crash, recovered at the next start). No-op when it is down."""
        if self.pid() is None:
            return
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def pid(self) -> int | None:
        """The postmaster's PID from its pid file, or None when it is not running."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def url(self, db: str) -> str:
        """``postgres://`` URL of database ``db`` (user ``postgres``, trust)."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, db: str, query: str, params: tuple | list | None = None) -> list[tuple]:
        """Run one statement in autocommit on database ``db``; its rows ([] if none)."""
        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` when given); returns its URL."""
        clause = f" TEMPLATE {template}" if template else ""
        self.sql("postgres", f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def close(self) -> None:
        """Stop the server (immediately) and delete the cluster."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the site's processes ------------------------------------------------------------------


def site_env(
    *, database_url: str, redis_url: str, broker_url: str = "", prefix: str, **extra: str
) -> dict[str, str]:
    """The environment of a site process on the private servers: production settings, our
    own ``SECRET_KEY``, Redis key prefix ``prefix``, no local ``.env`` file, logs at INFO.
    ``extra`` adds or overrides variables (``PBTS_*`` knobs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROPPED and not k.startswith(("PBTS_", "PYTEST_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=SECRET_KEY,
        DEBUG="false",
        PBTS_SECURE="false",
        PBTS_ENV_FILE=str(ROOT / ".reliability-no-env-file"),
        PBTS_REDIS_PREFIX=prefix,
        PBTS_UDP_PORT="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.update(extra)
    return env


class Proc:
    """A child process of ours: output to ``log_dir/<name>.log``, its own session, stopped
    by its PID only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        """Start it (appending to its log)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        """Its PID."""
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 40) -> str:
        """The last ``tail`` lines of its output."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def wait_listening(self, port: int, *, timeout: float = 60.0) -> None:
        """Wait until it accepts TCP connections on ``port``.

        Raises:
            RuntimeError: it exited, or did not listen in time (with its log).
        """

        def listening() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True

        try:
            wait_until(listening, timeout=timeout, what=f"{self.name} listening on {port}")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{self.log()}") from exc

    def wait_log(self, text: str, *, timeout: float = 60.0) -> None:
        """Wait until ``text`` appears in its output.

        Raises:
            RuntimeError: it exited first or ``timeout`` passed (with its log).
        """

        def seen() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            return text in self.log_path.read_text(errors="replace")

        try:
            wait_until(seen, timeout=timeout, what=f"{self.name} saying {text!r}", every=0.2)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{self.log()}") from exc

    def kill(self) -> None:
        """SIGKILL, by PID, and reap."""
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 20.0) -> int | None:
        """SIGTERM by PID, wait at most ``timeout`` seconds, then SIGKILL; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def rss_kib(self) -> int:
        """Resident set size (VmRSS, KiB); 0 when it is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


def manage(*args: str, env: dict[str, str], timeout: float = 300.0) -> str:
    """Run ``manage.py`` with ``env``; its output.

    Raises:
        RuntimeError: it failed (with its output).
    """
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def sitectl(command: str, env: dict[str, str], timeout: float = 300.0, **options: object) -> dict:
    """Run ``python -m tests.reliability.sitectl COMMAND`` (Django on ``env``'s database) with
    ``options`` as JSON; the JSON object it prints last.

    Raises:
        RuntimeError: it failed (with its output).
    """
    result = subprocess.run(
        [PYTHON, "-m", "tests.reliability.sitectl", command, json.dumps(options)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"sitectl {command} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
