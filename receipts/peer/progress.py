"""What the peer prints: a progress line redrawn in place on a terminal (rates, peers, pieces,
receipts signed / received / reported), or one JSON record per line (``--json``, or stdout not
a terminal): ``started``, ``status`` every second, ``complete``, ``warning``, ``exit``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receipts.peer.session import Session


class Output:
    """JSON status lines, or a progress line redrawn in place on a terminal."""

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines

    def record(self, kind: str, **fields: Any) -> None:
        """A JSON record (``exit`` and ``complete`` also on a terminal)."""
        if self.json_lines or kind in ("exit", "complete"):
            if not self.json_lines:
                sys.stdout.write("\n")
            print(json.dumps({"kind": kind, **fields}), flush=True)

    def status(self, summary: dict[str, Any]) -> None:
        """One status: a JSON line, or the progress line redrawn."""
        if self.json_lines:
            self.record("status", **summary)
            return
        s = summary
        percent = 100.0 * s["pieces"] / s["piece_count"]
        line = (
            f"\r{s['state']:11} {percent:5.1f}% {s['pieces']}/{s['piece_count']} pieces"
            f" | down {_rate(s['rate_down'])} up {_rate(s['rate_up'])} | peers {s['peers']}"
        )
        if "receipts_signed" in s:
            line += (
                f" | receipts signed {s['receipts_signed']} received {s['receipts_received']}"
                f" reported {s.get('receipts_reported', 0)}"
            )
        sys.stdout.write(line[:200] + "\x1b[K")
        sys.stdout.flush()

    def finish(self) -> None:
        """End the progress line."""
        if not self.json_lines:
            sys.stdout.write("\n")


def _rate(bytes_per_second: float) -> str:
    """Bytes per second in B/s, KiB/s, MiB/s or GiB/s."""
    value = float(bytes_per_second)
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if value < 1024 or unit == "GiB/s":
            return f"{value:6.1f} {unit}"
        value /= 1024
    return ""


def session_status(session: Session) -> dict[str, Any]:
    """Counters for the progress line and the JSON status."""
    have = sum(session.have)
    out: dict[str, Any] = {
        "state": "seeding" if session.complete else "downloading",
        "pieces": have,
        "piece_count": session.meta.piece_count,
        "peers": len(session.conns),
        "uploaded": session.uploaded,
        "downloaded": session.downloaded,
        "left": session.left,
        "rate_up": sum(c.rate_up for c in session.conns),
        "rate_down": sum(c.rate_down for c in session.conns),
        "hash_fails": session.hash_fails,
        "tracker_error": session.tracker_error,
        "port": session.port,
    }
    if session.exchange is not None:
        counters = session.exchange.counters
        out.update(
            receipts_signed=counters.signed,
            receipts_acked=counters.acked,
            receipts_nacked=counters.nacked,
            receipts_received=counters.received,
            receipts_refused=counters.refused,
            receipts_duplicates=counters.duplicates,
            strikes=dict(counters.strikes),
            sign_seconds=round(counters.sign_seconds, 4),
            check_seconds=round(counters.check_seconds, 4),
            receipts_checked=counters.checked,
            receipts_resumed=counters.resumed,
        )
    return out
