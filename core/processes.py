"""Stopping a child process this program started, by its handle (so by its PID): SIGTERM,
a bounded wait, then SIGKILL. Standard library only, no Django import: the chain's devnet,
the benchmarks and the tests share it."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen, *, grace: float, kill_wait: float = 10.0) -> None:
    """SIGTERM ``proc`` if it still runs, wait up to ``grace`` seconds for it to exit, then
    SIGKILL it and wait up to ``kill_wait`` seconds more.

    Raises:
        subprocess.TimeoutExpired: it outlived SIGKILL's wait too.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=kill_wait)
