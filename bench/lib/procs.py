"""The processes of a benchmark: free ports, starting and stopping servers (each by PID, only
the ones it started), and CPU seconds of process trees from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.lib.env import ROOT
from core.processes import stop_process

START_TIMEOUT = 30.0  # seconds a server has to accept connections
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system, including reaped children) of a process tree."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields:
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / CLK_TCK


def service_roots() -> list[int]:
    """PIDs of the machine's redis-server and PostgreSQL postmaster (read, never touched)."""
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            fields = _stat_fields(int(entry.name))
            parent = Path(f"/proc/{fields[1]}/comm").read_text().strip() if fields else ""
        except OSError:
            continue
        if comm == "redis-server" or (comm == "postgres" and parent != "postgres"):
            roots.append(int(entry.name))
    return roots


def cpu_snapshot(roots: list[int]) -> dict[int, float]:
    """CPU seconds so far of every process in the trees of ``roots``, by PID."""
    snap = {}
    for root in roots:
        for pid in process_tree(root):
            fields = _stat_fields(pid)
            if fields:
                snap[pid] = sum(int(v) for v in fields[11:15]) / CLK_TCK
    return snap


def cpu_since(before: dict[int, float], roots: list[int]) -> float:
    """CPU seconds the trees of ``roots`` used since the snapshot ``before``
    (:func:`cpu_snapshot`): processes started since count from zero, processes gone since
    (another program's Redis or connection that exited) drop out instead of making it
    negative."""
    after = cpu_snapshot(roots)
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def services_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by Redis and PostgreSQL (what the PBTS servers ask of them)."""
    return sum(tree_cpu_seconds(pid) for pid in roots)


@dataclass
class Server:
    """A server process this benchmark started."""

    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    flusher: subprocess.Popen | None = None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(
    name: str, cmd: list[str], *, port: int, env: dict, workdir: Path, cwd: Path = ROOT
) -> Server:
    """Start ``cmd`` in ``cwd`` (the checkout it serves) and wait (bounded) until it accepts
    connections on ``port``; its output goes to ``workdir/<name>.log``.

    Raises:
        RuntimeError: it exited or did not listen within ``START_TIMEOUT`` (it is stopped).
    """
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"{name} did not listen on {port} within {START_TIMEOUT:.0f} s")


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def stop_server(server: Server) -> None:
    """SIGTERM the server, wait (bounded), SIGKILL if needed; then SIGKILL any descendant it
    left behind (each by PID, only if it is still the same process)."""
    if server.flusher is not None:
        stop_server(Server(f"{server.name}-celery", server.flusher, 0, server.log_path))
    proc = server.proc
    leftovers = [(pid, _start_time(pid)) for pid in process_tree(proc.pid)[1:]]
    stop_process(proc, grace=10)
    for pid, started in leftovers:
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
