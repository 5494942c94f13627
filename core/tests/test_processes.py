"""core.processes.stop_process: SIGTERM first, SIGKILL only for a process that outlives it."""

import subprocess
import sys

from core.processes import stop_process

_IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(30)"
)


def _started(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_a_process_that_exits_on_sigterm_is_not_killed():
    proc = _started("import time; print('ready', flush=True); time.sleep(30)")
    stop_process(proc, grace=10)
    assert proc.returncode == -15


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace():
    proc = _started(_IGNORES_TERM)
    stop_process(proc, grace=0.5)
    assert proc.returncode == -9


def test_an_ended_process_is_left_alone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    stop_process(proc, grace=1)
    assert proc.returncode == 0
