"""Run ``trackerd`` (HTTP and UDP) in a thread of the test process, on loopback ports, or
as ``manage.py trackerd`` in a separate process.

The thread (``running_trackerd``) is used by the socket tests (``test_trackerd.py``) and the
real-client tests (``test_realclients.py``): the daemon shares this process's announce runtime
(``tracker.announce_runtime``), so a test reads the swarm and flushes the credits directly.
The process (``trackerd_subprocess``) is used where a test needs trackerd to share nothing
with the test process but the database and Redis (``test_reader_process.py``,
``test_runtime_config.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from core.processes import stop_process
from tracker.announce_runtime import serve_trackerd

LOOPBACK_UDP = ("127.0.0.1", "::1")
ROOT = Path(__file__).resolve().parents[2]


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_udp_port(hosts: tuple[str, ...] = LOOPBACK_UDP, attempts: int = 50) -> int:
    """A UDP port free on every address of ``hosts`` right now (bounded attempts).

    Raises:
        RuntimeError: no common free port found.
    """
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
            others = []
            try:
                for host in hosts[1:]:
                    family = socket.AF_INET6 if ":" in host else socket.AF_INET
                    other = socket.socket(family, socket.SOCK_DGRAM)
                    others.append(other)
                    other.bind((host, port))
            except OSError:
                continue
            finally:
                for other in others:
                    other.close()
            return port
    raise RuntimeError(f"no UDP port free on all of {hosts}")


@dataclass(frozen=True, slots=True)
class RunningTrackerd:
    """Where the daemon listens: HTTP on 127.0.0.1, UDP on ``udp_hosts`` (port 0: off)."""

    http_port: int
    udp_port: int
    udp_hosts: tuple[str, ...]


@contextlib.contextmanager
def running_trackerd(
    *, udp: bool = False, udp_hosts: tuple[str, ...] = LOOPBACK_UDP, timeout: float = 10.0
) -> Iterator[RunningTrackerd]:
    """Serve trackerd in a daemon thread with its own event loop until the block ends.

    Raises:
        AssertionError: it did not start within ``timeout`` seconds.
    """
    http_port = free_tcp_port()
    udp_port = free_udp_port(udp_hosts) if udp else 0
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(
                serve_trackerd(
                    "127.0.0.1",
                    http_port,
                    reuse_port=False,
                    ready=ready,
                    stop=stop,
                    udp_port=udp_port,
                    udp_hosts=udp_hosts,
                )
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="trackerd-test", daemon=True)
    thread.start()
    assert ready.wait(timeout), "trackerd did not start"
    assert not failure, f"trackerd failed to start: {failure[0]!r}"
    try:
        yield RunningTrackerd(http_port, udp_port, udp_hosts)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        loop.close()


@contextlib.contextmanager
def trackerd_subprocess(log_path: Path, *, timeout: float = 30.0, **env: str) -> Iterator[int]:
    """``manage.py trackerd`` in its own process, HTTP only, until the block ends.

    It runs with the production settings module (``pbts_site.settings``, so its background
    threads run as in production) on this test run's database (``settings.DATABASES``) and
    Redis prefix (inherited from the environment), UDP off (``PBTS_UDP_PORT=0``).

    Args:
        log_path: file that receives the process's stdout and stderr (overwritten).
        timeout: seconds to wait for ``/announce`` on the HTTP port to answer.
        env: further environment variables for the process, e.g. ``PBTS_SYNC_SECONDS="0.1"``.

    Yields:
        The HTTP port on 127.0.0.1.

    Raises:
        pytest.fail.Exception: it did not answer within ``timeout`` seconds (the log is in
            the message). The process is stopped by PID (``stop_process``) in every case.
    """
    db = settings.DATABASES["default"]
    proc_env = dict(os.environ)
    proc_env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
        PBTS_UDP_PORT="0",
    )
    proc_env.update(env)
    port = free_tcp_port()
    log = log_path.open("wb")
    cmd = [sys.executable, "manage.py", "trackerd", "--port", str(port), "--udp-port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=proc_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/announce", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"trackerd did not start: {log_path.read_text()}")
        yield port
    finally:
        stop_process(proc, grace=20)
        log.close()
