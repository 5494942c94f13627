"""Run ``trackerd`` (HTTP and UDP) in a thread of the test process, on loopback ports.

Used by the socket tests (``test_trackerd.py``) and the real-client tests
(``test_realclients.py``): the daemon shares this process's announce runtime
(``tracker.announce_runtime``), so a test reads the swarm and flushes the credits directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from tracker.announce_runtime import serve_trackerd

LOOPBACK_UDP = ("127.0.0.1", "::1")


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


def stop_process(proc: subprocess.Popen, *, grace: float = 20.0) -> None:
    """Stop a process this test started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
