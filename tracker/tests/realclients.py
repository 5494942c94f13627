"""Drivers for real BitTorrent clients in a closed swarm on 127.0.0.1 (end-to-end tests).

Each driver runs one client process in its own process group (``start_new_session``), writes
everything the client says to a log file in the test's temporary directory and offers the same
small interface: ``start()``, ``wait_seeding(timeout)``, ``wait_complete(timeout)``,
``wait_tracker_error(timeout)``, ``stop()``. Used as a context manager (or through
:func:`stop_all` in a fixture's ``finally``) it is always stopped, even when the test fails.
Every wait is bounded in time and a failed wait raises :class:`ClientFailure` with the log.

The swarm is closed: every client listens on 127.0.0.1 only, with DHT, peer exchange, local
peer discovery, UPnP and NAT-PMP off, so a seeder and a leecher can only find each other through
the tracker under test. The Debian packages they need are in the Makefile's ``TEST_DEBS``
(``mktorrent aria2 python3-libtorrent``).

Over UDP (BEP 15) only libtorrent and qBittorrent send the passkey path as BEP 41 URL data
(Transmission 3.00 and aria2 send none), so the UDP end-to-end test uses libtorrent on both
sides; :func:`only_tracker_urls` takes the HTTP URL out of their .torrent files.

Clients and the peer_id prefixes they announce with (BEP 20):

- :class:`LibtorrentClient`: Debian's ``python3-libtorrent`` 2.0 driven by a small script run with
  the system Python (``/usr/bin/python3``; the bindings are not in the virtualenv): ``-LT20``.
- :class:`Aria2Client`: ``aria2c`` 1.36: ``A2-``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter that has Debian's ``python3-libtorrent`` bindings."""

POLL_SECONDS = 0.1
LOG_TAIL_CHARS = 6000


class ClientFailure(AssertionError):
    """A client did not do what the test waited for; the message carries its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_torrent(source: Path, *, output: Path, piece_length_log2: int = 16) -> bytes:
    """Create a single-file .torrent for ``source`` with ``mktorrent``; returns its bytes.

    The announce URL is a placeholder: the site's upload rewrite drops it and every member's
    download carries their own announce URL.
    """
    subprocess.run(
        [
            "mktorrent",
            "--announce=http://placeholder.invalid/announce",
            f"--piece-length={piece_length_log2}",
            "--no-date",
            f"--output={output}",
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return output.read_bytes()


def only_tracker_urls(torrent: bytes, *, scheme: str) -> bytes:
    """The .torrent ``torrent`` with every announce URL not of ``scheme`` (``"udp"``,
    ``"http"``) removed from ``announce`` and ``announce-list`` (BEP 3, BEP 12), so that a
    client can reach the tracker only that way. The info dictionary is untouched (same
    info_hash).

    Raises:
        ValueError: no URL of that scheme is listed.
    """
    import fastbencode

    data = fastbencode.bdecode(torrent)
    prefix = f"{scheme}://".encode()
    urls = [u for tier in data.get(b"announce-list", []) for u in tier if u.startswith(prefix)]
    if data.get(b"announce", b"").startswith(prefix) and data[b"announce"] not in urls:
        urls.insert(0, data[b"announce"])
    if not urls:
        raise ValueError(f"no {scheme}:// announce URL in the torrent")
    data[b"announce"] = urls[0]
    data[b"announce-list"] = [urls]
    return fastbencode.bencode(data)


def wait_until(predicate: Callable[[], Any], *, timeout: float) -> Any:
    """Poll ``predicate`` every 0.1 s until it returns a true value or ``timeout`` seconds pass.

    Returns the last value (false on timeout); the number of polls is bounded by the timeout.
    """
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / POLL_SECONDS) + 2):
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_SECONDS)
    return predicate()


class ClientProcess:
    """One client process in its own process group, its output in ``<workdir>/client.log``.

    Subclasses set ``name``, ``peer_id_prefix`` and ``stop_signal`` and build the command line
    in :meth:`command`.

    Args:
        torrent: the member's .torrent file (it carries their passkey announce URL).
        workdir: a fresh directory for the download, the log and any client state.
        port: the TCP port to listen on (127.0.0.1 only).
    """

    name = "client"
    peer_id_prefix = ""
    stop_signal = signal.SIGTERM
    stop_timeout = 20.0

    def __init__(self, *, torrent: Path, workdir: Path, port: int | None = None) -> None:
        self.torrent = torrent
        self.workdir = workdir
        self.download_dir = workdir / "data"
        self.port = port or free_port()
        self.log_path = workdir / "client.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop_requested = False

    def command(self) -> list[str]:
        """The client's command line."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the client in a new process group; its output goes to :attr:`log_path`."""
        assert self.proc is None, f"{self.name} already started"
        self.download_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def environment(self) -> dict[str, str]:
        """The client's environment: ours without proxy variables (aria2 would send the
        loopback announces to a proxy) and with ``HOME`` in the work directory (no state is
        read from or left in the real home)."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["HOME"] = str(self.workdir)
        return env

    def wait_seeding(self, timeout: float) -> None:
        """Wait until the client has verified its data and seeds (raises
        :class:`ClientFailure` with the log otherwise)."""
        raise NotImplementedError

    def wait_complete(self, timeout: float) -> None:
        """Wait until the client has downloaded and verified everything (raises
        :class:`ClientFailure` with the log otherwise)."""
        raise NotImplementedError

    def wait_tracker_error(self, timeout: float) -> str:
        """Wait for the first tracker ``failure reason`` the client reports and return it
        (raises :class:`ClientFailure` with the log if none comes)."""
        raise NotImplementedError

    def _exited_unreaped(self) -> bool:
        """True once the client has exited; it stays a zombie (``WNOWAIT``), so its process
        group id cannot be reused by anyone else until :meth:`stop` reaps it."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return True
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def is_running(self) -> bool:
        """True while the client process has not exited."""
        return self.proc is not None and not self._exited_unreaped()

    def log_text(self) -> str:
        """The client's whole log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        """The client's name, state and log tail, for assertion messages."""
        state = "running" if self.is_running() else "exited"
        if self.proc is not None and self.proc.returncode is not None:
            state = f"exit code {self.proc.returncode}"
        tail = self.log_text()[-LOG_TAIL_CHARS:]
        return f"--- {self.name} ({state}), log {self.log_path} (tail) ---\n{tail}"

    def _wait_exited(self, timeout: float) -> bool:
        return bool(wait_until(self._exited_unreaped, timeout=timeout))

    def request_stop(self) -> None:
        """Send ``stop_signal`` to the process group once, without waiting (so several
        clients can shut down at the same time; :meth:`stop` then waits)."""
        if self.proc is None or self._stop_requested or self._exited_unreaped():
            return
        self._stop_requested = True
        self._signal_group(self.stop_signal)

    def stop(self) -> int | None:
        """Stop gracefully: ``stop_signal`` to the process group (the client then sends its
        ``stopped`` announce); after ``stop_timeout`` s SIGKILL. Whatever is left in the group
        is killed before the client is reaped.

        Idempotent; returns the exit code (``None`` if never started).
        """
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.request_stop()
        if not self._wait_exited(self.stop_timeout):
            self._signal_group(signal.SIGKILL)
            self._wait_exited(10.0)
        # The leader is a zombie now: the group id is still ours, so this reaches only what the
        # client forked and nothing else.
        self._signal_group(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None and self.proc.returncode is None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> ClientProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def stop_all(clients: list[ClientProcess]) -> None:
    """Stop several clients at once: every stop signal is sent first, then each is waited for
    (and killed if it does not exit in time). Every client is stopped even if one fails."""
    for client in clients:
        with contextlib.suppress(Exception):
            client.request_stop()
    errors = []
    for client in clients:
        try:
            client.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


# The libtorrent driver, run with /usr/bin/python3: LIBTORRENT_SCRIPT TORRENT SAVE_DIR PORT
# MAX_SECONDS. It prints one JSON object per line: {"kind": "alert", "what", "message"} for every
# alert (plus "failure_reason" for tracker errors), {"kind": "status", ...} every 0.25 s and
# {"kind": "exit", ...} with the final counters. SIGTERM/SIGINT, the parent's death or the time
# limit end it: the torrent is paused (which announces `stopped`) and the session destroyed
# (which waits for that announce up to stop_tracker_timeout).
LIBTORRENT_SCRIPT = r"""
import json, os, signal, sys, time
import libtorrent as lt

torrent, save_path = sys.argv[1], sys.argv[2]
port, max_seconds = int(sys.argv[3]), float(sys.argv[4])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
parent = os.getppid()


def emit(**fields):
    print(json.dumps(fields), flush=True)


cat = lt.alert.category_t
settings = {
    "listen_interfaces": "127.0.0.1:%d" % port,
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "ssrf_mitigation": False,
    "stop_tracker_timeout": 5,
    "alert_mask": cat.error_notification | cat.status_notification | cat.tracker_notification
    | cat.storage_notification | cat.connect_notification,
}
# flags=0: no default plugins, so no ut_pex (peer exchange) and no ut_metadata.
ses = lt.session(settings, 0)
params = lt.add_torrent_params()
params.ti = lt.torrent_info(torrent)
params.save_path = save_path
handle = ses.add_torrent(params)
fingerprint = ses.get_settings()["peer_fingerprint"]
emit(kind="started", info_hash=str(handle.info_hash()), fingerprint=fingerprint)


def status_fields():
    s = handle.status()
    return dict(
        state=str(s.state), progress=s.progress, is_seeding=s.is_seeding,
        total_done=s.total_done, payload_upload=s.total_payload_upload,
        payload_download=s.total_payload_download, num_peers=s.num_peers,
        error=s.errc.message() if s.errc.value() else "",
    )


def drain():
    seen = []
    for alert in ses.pop_alerts():
        fields = dict(kind="alert", what=alert.what(), message=alert.message())
        if isinstance(alert, lt.tracker_error_alert):
            fields["failure_reason"] = alert.failure_reason()
        emit(**fields)
        seen.append(alert)
    return seen


deadline = time.monotonic() + max_seconds
last_status = 0.0
reason = "time limit"
while time.monotonic() < deadline:
    if stop:
        reason = stop[0]
        break
    if os.getppid() != parent:
        reason = "parent gone"
        break
    ses.wait_for_alert(100)
    drain()
    if time.monotonic() - last_status >= 0.25:
        last_status = time.monotonic()
        emit(kind="status", **status_fields())

final = status_fields()
ses.pause()
for _ in range(40):
    ses.wait_for_alert(50)
    if any(isinstance(a, lt.torrent_paused_alert) for a in drain()):
        break
del handle
del ses
emit(kind="exit", reason=reason, **final)
"""


class LibtorrentClient(ClientProcess):
    """libtorrent 2.0 (Debian ``python3-libtorrent``) run by :data:`LIBTORRENT_SCRIPT`.

    Closed-swarm settings: ``listen_interfaces=127.0.0.1:<port>``; ``enable_dht``,
    ``enable_lsd``, ``enable_upnp``, ``enable_natpmp`` off; TCP only (uTP off); the session is
    made without default plugins (no ``ut_pex``); ``allow_multiple_connections_per_ip`` on
    (every peer is 127.0.0.1); ``ssrf_mitigation`` off (a loopback tracker would otherwise be
    allowed only for paths starting with ``/announce``, which ours do anyway). Peer id prefix
    ``-LT2080-`` for 2.0.8. SIGTERM makes it pause, then destroy the session, which sends
    ``stopped``.

    Args:
        max_seconds: the script exits by itself after this long (a safety net).
    """

    name = "libtorrent"
    peer_id_prefix = "-LT20"
    stop_signal = signal.SIGTERM

    def __init__(self, *, max_seconds: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_seconds = max_seconds
        self.script = self.workdir / "lt_driver.py"

    def command(self) -> list[str]:
        """``/usr/bin/python3 lt_driver.py TORRENT SAVE_DIR PORT MAX_SECONDS``."""
        self.script.write_text(LIBTORRENT_SCRIPT)
        return [
            SYSTEM_PYTHON,
            "-u",
            str(self.script),
            str(self.torrent),
            str(self.download_dir),
            str(self.port),
            str(self.max_seconds),
        ]

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line the driver printed so far (other lines are skipped)."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def last_status(self) -> dict[str, Any]:
        """The latest ``status`` record (``{}`` before the first)."""
        statuses = [r for r in self.records() if r.get("kind") in ("status", "exit")]
        return statuses[-1] if statuses else {}

    def tracker_errors(self) -> list[str]:
        """``failure reason`` texts (or error messages) from ``tracker_error_alert``s."""
        return [
            r.get("failure_reason") or r.get("message", "")
            for r in self.records()
            if r.get("what") == "tracker_error"
        ]

    def _check_alive(self, waiting_for: str) -> None:
        if not self.is_running():
            raise ClientFailure(f"{self.name} exited while {waiting_for}\n{self.describe()}")

    def wait_seeding(self, timeout: float = 60.0) -> None:
        """Wait until the torrent is checked and seeding (the seeder's data verified)."""
        if not wait_until(
            lambda: self.last_status().get("is_seeding") or not self.is_running(), timeout=timeout
        ):
            raise ClientFailure(f"{self.name} not seeding after {timeout} s\n{self.describe()}")
        self._check_alive("checking its data")

    def wait_complete(self, timeout: float = 120.0) -> None:
        """Wait until the download is complete (libtorrent then announces ``completed``)."""
        if not wait_until(
            lambda: self.last_status().get("is_seeding") or not self.is_running(), timeout=timeout
        ):
            raise ClientFailure(
                f"{self.name} did not finish in {timeout} s: {self.last_status()}\n"
                f"{self.describe()}"
            )
        self._check_alive("downloading")

    def wait_tracker_error(self, timeout: float = 60.0) -> str:
        """Wait for the first tracker error and return its failure reason."""
        wait_until(lambda: self.tracker_errors() or not self.is_running(), timeout=timeout)
        if not self.tracker_errors():
            raise ClientFailure(f"{self.name}: no tracker error in {timeout} s\n{self.describe()}")
        return self.tracker_errors()[0]


class Aria2Client(ClientProcess):
    """aria2c 1.36 as a BitTorrent client (the same flags for seeder and leecher).

    Closed-swarm flags: ``--interface=127.0.0.1`` (every socket bound to loopback),
    ``--listen-port``, ``--enable-dht=false --enable-dht6=false --enable-peer-exchange=false
    --bt-enable-lpd=false``, ``--disable-ipv6=true``; aria2 has no UPnP/NAT-PMP.
    ``--check-integrity=true`` (when the download directory already holds data) makes a seeder
    hash its data instead of downloading it again; ``--seed-ratio=0.0`` with no ``--seed-time``
    seeds until stopped; ``--on-bt-download-complete`` runs a hook that tells the driver the
    data is complete. (With ``--seed-time=0``
    aria2 would skip the ``completed`` announce: it sends ``stopped`` with left=0 at once.)
    ``--stop-with-process`` ties it to the test process. aria2 announces ``stopped`` only on
    SIGINT (not SIGTERM), so that is the stop signal. Peer id prefix ``A2-1-36-0-``.
    """

    name = "aria2"
    peer_id_prefix = "A2-"
    stop_signal = signal.SIGINT

    def command(self) -> list[str]:
        """The ``aria2c`` command line (see the class docstring)."""
        return [
            "aria2c",
            f"--dir={self.download_dir}",
            "--interface=127.0.0.1",
            f"--listen-port={self.port}",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--enable-peer-exchange=false",
            "--bt-enable-lpd=false",
            "--disable-ipv6=true",
            "--bt-save-metadata=false",
            "--bt-remove-unselected-file=false",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--bt-tracker-connect-timeout=10",
            "--bt-tracker-timeout=10",
            "--bt-stop-timeout=0",
            "--summary-interval=0",
            "--console-log-level=notice",
            f"--log={self.workdir / 'aria2-debug.log'}",
            "--log-level=info",
            f"--stop-with-process={os.getpid()}",
            "--show-console-readout=false",
            "--enable-color=false",
            "--no-conf=true",
            "--seed-ratio=0.0",
            f"--on-bt-download-complete={self._hook()}",
            # Hash existing data (a seeder's) instead of downloading it again.
            f"--check-integrity={'true' if any(self.download_dir.iterdir()) else 'false'}",
            str(self.torrent),
        ]

    def _hook(self) -> Path:
        """A script aria2 runs when the download is complete, before seeding: it writes
        ``<workdir>/bt-complete`` (aria2's own log cannot tell the torrent's completion from
        that of its tracker requests)."""
        hook = self.workdir / "on-bt-complete.sh"
        hook.write_text(f'#!/bin/sh\necho "$@" >> "{self.complete_marker}"\n')
        hook.chmod(0o755)
        return hook

    @property
    def complete_marker(self) -> Path:
        """The file the completion hook writes."""
        return self.workdir / "bt-complete"

    def debug_log(self) -> str:
        """aria2's own log file (``--log``, level info)."""
        try:
            return (self.workdir / "aria2-debug.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        """Console output plus the tail of aria2's info log."""
        tail = self.debug_log()[-LOG_TAIL_CHARS:]
        return f"{super().describe()}\n--- aria2 info log (tail) ---\n{tail}"

    def wait_complete(self, timeout: float = 120.0) -> None:
        """Wait until aria2 logs that the download is complete (it then announces
        ``completed`` and seeds on)."""
        wait_until(lambda: self.is_complete() or not self.is_running(), timeout=timeout)
        if not self.is_complete() or not self.is_running():
            raise ClientFailure(f"{self.name} did not finish in {timeout} s\n{self.describe()}")

    def is_complete(self) -> bool:
        """True once aria2 has all pieces, downloaded or verified (its hook has run)."""
        return self.complete_marker.exists()

    def wait_seeding(self, timeout: float = 60.0) -> None:
        """Wait until aria2 has verified the data and seeds."""
        wait_until(lambda: self.is_complete() or not self.is_running(), timeout=timeout)
        if not self.is_complete() or not self.is_running():
            raise ClientFailure(f"{self.name} not seeding after {timeout} s\n{self.describe()}")

    def tracker_errors(self) -> list[str]:
        """Failure reasons aria2 logged for tracker replies."""
        marker = "Tracker returned failure reason: "
        return [
            line.split(marker, 1)[1].strip()
            for line in self.debug_log().splitlines()
            if marker in line
        ]

    def wait_tracker_error(self, timeout: float = 60.0) -> str:
        """Wait for the first tracker failure reason in aria2's log and return it."""
        wait_until(lambda: self.tracker_errors() or not self.is_running(), timeout=timeout)
        if not self.tracker_errors():
            raise ClientFailure(f"{self.name}: no tracker error in {timeout} s\n{self.describe()}")
        return self.tracker_errors()[0]
