"""A real Celery worker (``python -m tests.reliability.hooked_worker -A pbts_site worker ...``)
that stops at one chosen point of a task, so a test can SIGKILL it (or restart a server) at a
known moment. Test-only: the site's code has no hook; this wrapper patches one function of the
worker process before Celery starts.

Environment:

- ``RELIABILITY_PAUSE``: the point (see :data:`POINTS`); unset: an ordinary worker.
- ``RELIABILITY_PAUSE_AT``: which call of that point pauses (1-based, default 1); the other
  calls run through.
- ``RELIABILITY_MARKER``: a file written (JSON: point, call, pid) once the worker is paused.
- ``RELIABILITY_RELEASE``: a file whose appearance ends the pause (the task then goes on);
  without it, or if it never appears, the pause lasts ``PAUSE_LIMIT`` seconds.

The points:

- ``flush-before-commit``: the statistics flush, inside its transaction, after the batch id
  row, the ledgers and the history are written, before the commit;
- ``flush-after-commit``: after a batch committed, before it is forgotten in Redis;
- ``verify-before-commit``: receipt verification, inside its transaction, after the statuses
  and the ledger credits are written, before the commit;
- ``push-before-broadcast``: a chain push, the transaction's record committed (signed bytes,
  nonce) but not broadcast;
- ``push-after-broadcast``: a chain push, the transaction broadcast (anvil mines it at once),
  its receipt not yet recorded.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

PAUSE_LIMIT = 600.0  # seconds a paused worker waits at most

# point -> (module, function, pause "before" or "after" the original call)
POINTS = {
    "flush-before-commit": ("tracker.services.stats", "_upsert_history", "after"),
    "flush-after-commit": ("tracker.announce_runtime", "stats_flush", "after"),
    "verify-before-commit": ("receipts.services.verify", "_credit", "after"),
    "push-before-broadcast": ("chain.services.transactions", "_broadcast", "before"),
    "push-after-broadcast": ("chain.services.transactions", "_broadcast", "after"),
}


def _pause(point: str, call: int) -> None:
    marker = Path(os.environ["RELIABILITY_MARKER"])
    marker.write_text(json.dumps({"point": point, "call": call, "pid": os.getpid()}))
    release = os.environ.get("RELIABILITY_RELEASE")
    deadline = time.monotonic() + PAUSE_LIMIT
    while time.monotonic() < deadline:
        if release and Path(release).exists():
            return
        time.sleep(0.05)


def install(point: str, at: int) -> None:
    """Wrap the function of ``point`` so that its ``at``-th call pauses."""
    module_name, name, when = POINTS[point]
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    calls = [0]

    def hooked(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at and when == "before":
            _pause(point, calls[0])
        result = original(*args, **kwargs)
        if calls[0] == at and when == "after":
            _pause(point, calls[0])
        return result

    setattr(module, name, hooked)


def main(argv: list[str]) -> None:
    """Install the pause (if asked), then run Celery's command line with ``argv``."""
    point = os.environ.get("RELIABILITY_PAUSE", "")
    if point:
        import django

        django.setup()
        install(point, int(os.environ.get("RELIABILITY_PAUSE_AT", "1")))
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *argv]
    celery_main()


if __name__ == "__main__":
    main(sys.argv[1:])
