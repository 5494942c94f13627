"""A local stand-in for the dstack guest agent: HTTP/1.1 with JSON bodies on a Unix socket,
answering the calls dstack-sdk 0.5.4 makes (``dstack_sdk/dstack_client.py``) with
deterministic fake data. Nothing here is a TEE: the quote is a labelled fake.

- ``POST /GetKey`` ``{"path", "purpose", "algorithm"}`` -> ``{"key": hex(32 bytes),
  "signature_chain": [hex, hex]}``; the key is sha256("standin-key", path, purpose).
- ``POST /GetQuote`` ``{"report_data": hex}`` -> ``{"quote": hex, "event_log": "[]",
  "report_data": hex, "vm_config": ""}``; the quote is ``QUOTE_PREFIX`` + the 64-byte
  zero-padded report data.
- ``POST /Info`` ``{}`` -> an ``InfoResponse`` whose ``tcb_info`` is a JSON string
  (``TcbInfoV05x`` fields), as the real agent sends it.

Tests start it with :func:`serve` and point ``DSTACK_SIMULATOR_ENDPOINT`` at its socket.
``python -m experiments.tests.dstack_standin PATH`` serves it in the foreground.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

QUOTE_PREFIX = b"PBTS-STANDIN-FAKE-TDX-QUOTE\x00"
APP_ID = "5e1f" * 10
INSTANCE_ID = "1a57" * 10
ZERO48 = "00" * 48


def get_key(body: dict[str, Any]) -> dict[str, Any]:
    """The GetKey reply: a key that depends only on path and purpose."""
    path, purpose = str(body.get("path", "")), str(body.get("purpose", ""))
    key = hashlib.sha256(f"standin-key\x00{path}\x00{purpose}".encode()).digest()
    chain = [hashlib.sha256(b"chain" + key).hexdigest(), hashlib.sha256(b"root").hexdigest()]
    return {"key": key.hex(), "signature_chain": chain}


def get_quote(body: dict[str, Any]) -> dict[str, Any]:
    """The GetQuote reply; refuses (ValueError) report data over 64 bytes, as the agent does."""
    report = bytes.fromhex(str(body.get("report_data", "")))
    if len(report) > 64:
        raise ValueError("report_data over 64 bytes")
    padded = report.ljust(64, b"\0")
    return {
        "quote": (QUOTE_PREFIX + padded).hex(),
        "event_log": "[]",
        "report_data": padded.hex(),
        "vm_config": "",
    }


def info(body: dict[str, Any]) -> dict[str, Any]:
    """The Info reply (dstack OS 0.5.x shape)."""
    tcb = {
        "mrtd": ZERO48,
        "rtmr0": ZERO48,
        "rtmr1": ZERO48,
        "rtmr2": ZERO48,
        "rtmr3": ZERO48,
        "app_compose": "{}",
        "event_log": [],
        "mr_aggregated": "00" * 32,
        "os_image_hash": "00" * 32,
        "compose_hash": "00" * 32,
        "device_id": "00" * 32,
    }
    return {
        "app_id": APP_ID,
        "instance_id": INSTANCE_ID,
        "app_cert": "",
        "tcb_info": json.dumps(tcb),
        "app_name": "pbts-standin",
        "device_id": "00" * 32,
        "key_provider_info": "{}",
        "compose_hash": "00" * 32,
    }


ROUTES = {"/GetKey": get_key, "/GetQuote": get_quote, "/Info": info}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandIn

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        route = ROUTES.get(self.path)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if route is None:
                raise LookupError(self.path)
            reply, status = route(body), 200
        except LookupError:
            reply, status = {"error": f"no method {self.path}"}, 404
        except (ValueError, TypeError) as exc:
            reply, status = {"error": str(exc)}, 400
        with self.server.lock:
            self.server.calls[self.path] += 1
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:  # a Unix socket peer has no host
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StandIn(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The server; ``calls`` counts requests per path (guarded by ``lock``)."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()


def serve(path: Path) -> tuple[StandIn, threading.Thread]:
    """Start the stand-in on the Unix socket ``path`` in a daemon thread; stop it with
    ``server.shutdown(); server.server_close()``."""
    server = StandIn(str(path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


if __name__ == "__main__":
    socket_path = Path(sys.argv[1])
    if socket_path.is_socket():  # left by an earlier run
        socket_path.unlink()
    print(f"dstack stand-in on {socket_path}; DSTACK_SIMULATOR_ENDPOINT={socket_path}")
    StandIn(str(socket_path)).serve_forever()
