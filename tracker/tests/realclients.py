"""Drivers for real BitTorrent clients in a closed swarm (end-to-end tests).

Each driver runs one client process in its own process group (``start_new_session``), writes
everything the client says to a log file in the test's temporary directory and offers the same
small interface: ``start()``, ``wait_seeding(timeout)``, ``wait_complete(timeout)``,
``wait_tracker_error(timeout)``, ``stop()``. Used as a context manager (or through
:func:`stop_all` in a fixture's ``finally``) it is always stopped, even when the test fails.
Every wait is bounded in time and a failed wait raises :class:`ClientFailure` with the log.

The swarm is closed: every client listens on one address only (127.0.0.1, or the veth address
of a network namespace made by the test, :mod:`tracker.tests.netns`, for Transmission, which
ignores 127.0.0.0/8 peers; :meth:`ClientProcess.placed`), with DHT, peer exchange, local peer
discovery, UPnP and NAT-PMP off, so a seeder and a leecher can only find each other through
the tracker under test. The Debian packages they need are in the Makefile's ``TEST_DEBS``
(``mktorrent aria2 python3-libtorrent transmission-daemon transmission-cli deluged
deluge-console rtorrent iproute2``). docs/real-clients.md describes each setup.

Over UDP (BEP 15) only libtorrent and qBittorrent send the passkey path as BEP 41 URL data
(Transmission 3.00 and aria2 send none), so the UDP end-to-end test uses libtorrent on both
sides; :func:`only_tracker_urls` takes the HTTP URL out of their .torrent files.

Clients and the peer_id prefixes they announce with (BEP 20; all on the seeded whitelist,
``tracker/seed_data.py``):

- :class:`LibtorrentClient`: Debian's ``python3-libtorrent`` 2.0 driven by a small script run with
  the system Python (``/usr/bin/python3``; the bindings are not in the virtualenv): ``-LT2080-``.
  qBittorrent's engine is this same library (its own prefix is ``-qB``).
- :class:`Aria2Client`: ``aria2c`` 1.36: ``A2-1-36-0-``.
- :class:`TransmissionClient`: ``transmission-daemon`` 3.00 driven by ``transmission-remote``,
  in a network namespace: ``-TR3000-``.
- :class:`DelugeClient`: ``deluged`` 2.0.3 (libtorrent-rasterbar 2.0 underneath) driven through
  Deluge's client library, on loopback: ``-DE203s-``.
- :class:`RtorrentClient`: ``rtorrent`` 0.9.8 (libtorrent-rakshasa 0.13.8) headless
  (``system.daemon``) driven through XML-RPC on a unix socket, on loopback: ``-lt0D80-``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import xmlrpc.client
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
        port: the TCP port to listen on (on :attr:`host` only).
    """

    name = "client"
    peer_id_prefix = ""
    stop_signal = signal.SIGTERM
    stop_timeout = 20.0
    host = "127.0.0.1"
    """The IPv4 address the client listens on (and binds its sockets to, where it can)."""
    netns: str | None = None
    """The network namespace the client runs in (``None``: the test's own)."""

    def __init__(self, *, torrent: Path, workdir: Path, port: int | None = None) -> None:
        self.torrent = torrent
        self.workdir = workdir
        self.download_dir = workdir / "data"
        self.port = port or free_port()
        self.log_path = workdir / "client.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop_requested = False

    @classmethod
    def placed(cls, *, host: str, netns: str | None = None) -> type[ClientProcess]:
        """A subclass whose clients listen on ``host`` inside namespace ``netns`` (see
        :mod:`tracker.tests.netns`); name, peer_id prefix and behaviour are unchanged."""
        return type(cls.__name__, (cls,), {"host": host, "netns": netns})

    def in_netns(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed with ``ip netns exec NAME`` when the client lives in a namespace
        (``ip`` execs in place: the PID and process group stay the client's)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def command(self) -> list[str]:
        """The client's command line."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the client in a new process group; its output goes to :attr:`log_path`."""
        assert self.proc is None, f"{self.name} already started"
        self.download_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.in_netns(self.command()),
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
# MAX_SECONDS HOST. It prints one JSON object per line: {"kind": "alert", "what", "message"} for
# every alert (plus "failure_reason" for tracker errors), {"kind": "status", ...} every 0.25 s and
# {"kind": "exit", ...} with the final counters. SIGTERM/SIGINT, the parent's death or the time
# limit end it: the torrent is paused (which announces `stopped`) and the session destroyed
# (which waits for that announce up to stop_tracker_timeout).
LIBTORRENT_SCRIPT = r"""
import json, os, signal, sys, time
import libtorrent as lt

torrent, save_path = sys.argv[1], sys.argv[2]
port, max_seconds, host = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
parent = os.getppid()


def emit(**fields):
    print(json.dumps(fields), flush=True)


cat = lt.alert.category_t
settings = {
    "listen_interfaces": "%s:%d" % (host, port),
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
        """``/usr/bin/python3 lt_driver.py TORRENT SAVE_DIR PORT MAX_SECONDS HOST``."""
        self.script.write_text(LIBTORRENT_SCRIPT)
        return [
            SYSTEM_PYTHON,
            "-u",
            str(self.script),
            str(self.torrent),
            str(self.download_dir),
            str(self.port),
            str(self.max_seconds),
            self.host,
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
            f"--interface={self.host}",
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


def run_bounded(argv: list[str], *, env: dict[str, str], timeout: float = 30.0) -> str:
    """Run a control command (``transmission-remote``, ``deluge-console``) to completion,
    bounded by ``timeout`` seconds; returns stdout and stderr together (never raises on a
    non-zero exit: the callers read the output, and a timeout comes back as a message)."""
    try:
        done = subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"[{argv[0]} timed out after {timeout} s]"
    return done.stdout + done.stderr


class ControlledClient(ClientProcess):
    """A daemon driven by a control tool after it has started (Transmission, Deluge,
    rtorrent): :meth:`start` launches the daemon, waits until it answers, then adds the torrent
    (:meth:`add_torrent`). The waits poll :meth:`status`, a dict with ``complete`` (all data
    there and verified), ``checking`` (hashing), ``error`` (the tracker's failure reason or
    ``""``) and ``raw`` (what the tool said), and keep the last one for :meth:`describe`.
    A client that exits during a wait fails it at once.
    """

    ready_timeout = 30.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last: dict[str, Any] = {}

    def start(self) -> None:
        """Start the daemon, wait until its control interface answers, add the torrent.

        Raises:
            ClientFailure: it never answered within :attr:`ready_timeout` seconds.
        """
        super().start()
        ready = wait_until(
            lambda: self.is_ready() or not self.is_running(), timeout=self.ready_timeout
        )
        if not ready:
            raise ClientFailure(f"{self.name} never answered\n{self.describe()}")
        if not self.is_running():
            raise ClientFailure(f"{self.name} exited at start\n{self.describe()}")
        self.add_torrent()

    def is_ready(self) -> bool:
        """True once the daemon answers its control interface."""
        raise NotImplementedError

    def add_torrent(self) -> None:
        """Hand the member's .torrent to the daemon, saving into :attr:`download_dir`."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """The torrent's state now (see the class docstring)."""
        raise NotImplementedError

    def poll(self) -> dict[str, Any]:
        """:meth:`status`, remembered as :attr:`last` (``{}`` once the daemon has exited)."""
        if not self.is_running():
            return {}
        self.last = self.status()
        return self.last

    def describe(self) -> str:
        """Log tail plus the last status the control tool gave."""
        raw = self.last.get("raw", "")
        return f"{super().describe()}\n--- {self.name} last status ---\n{self.last}\n{raw}"

    def _wait_for(self, key: str, what: str, timeout: float) -> dict[str, Any]:
        wait_until(lambda: self.poll().get(key) or not self.is_running(), timeout=timeout)
        if not self.is_running():
            raise ClientFailure(f"{self.name} exited while {what}\n{self.describe()}")
        if not self.last.get(key):
            raise ClientFailure(f"{self.name}: not {what} after {timeout} s\n{self.describe()}")
        return self.last

    def wait_seeding(self, timeout: float = 60.0) -> None:
        """Wait until the data is verified complete (the client then seeds)."""
        self._wait_for("complete", "seeding", timeout)

    def wait_complete(self, timeout: float = 120.0) -> None:
        """Wait until the download is complete and verified."""
        self._wait_for("complete", "complete", timeout)

    def wait_tracker_error(self, timeout: float = 60.0) -> str:
        """Wait for the tracker's failure reason as the client shows it; returns it."""
        return self._wait_for("error", "showing a tracker error", timeout)["error"]


TRANSMISSION_SEEDING = {5, 6}  # TR_STATUS_SEED_WAIT, TR_STATUS_SEED
TRANSMISSION_CHECKING = {1, 2}  # TR_STATUS_CHECK_WAIT, TR_STATUS_CHECK
TRANSMISSION_ANNOUNCING = {2, 3}  # TR_TRACKER_QUEUED, TR_TRACKER_ACTIVE


def transmission_responses(debug_output: str) -> list[dict[str, Any]]:
    """The JSON RPC replies that ``transmission-remote --debug`` printed (each follows a
    ``got response (len N):`` line and a ``--------`` line)."""
    out = []
    lines = debug_output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("got response") and i + 2 < len(lines):
            with contextlib.suppress(ValueError):
                out.append(json.loads(lines[i + 2]))
    return out


class TransmissionClient(ControlledClient):
    """Transmission 3.00: ``transmission-daemon -f`` (foreground) driven by
    ``transmission-remote`` over its RPC port on the namespace's own ``127.0.0.1``.

    Transmission ignores tracker-given peers in 127.0.0.0/8, so it is placed in a network
    namespace (:mod:`tracker.tests.netns`, :meth:`ClientProcess.placed`): it listens on the
    namespace's veth address and the RPC (``rpc-bind-address`` 127.0.0.1, no authentication,
    whitelist 127.0.0.1) is reached by running ``transmission-remote`` in the same namespace.

    ``settings.json`` in ``<workdir>/config`` (``-g``): ``dht-enabled``, ``pex-enabled``,
    ``lpd-enabled``, ``utp-enabled``, ``port-forwarding-enabled`` (UPnP/NAT-PMP) and
    ``blocklist-enabled`` off; ``bind-address-ipv4`` = :attr:`host`, ``bind-address-ipv6``
    ``::1``; ``peer-port`` fixed; no ratio or idle seeding limit; ``message-level`` 2 (info).

    State: ``transmission-remote --debug -t 1 -i -it`` prints the RPC's JSON replies, read
    here (``leftUntilDone``, ``status``; ``trackerStats[0]``'s ``lastAnnounceResult`` when
    ``lastAnnounceSucceeded`` is false: the tracker's failure reason). Stopping: with a
    torrent active, SIGTERM alone makes transmission-daemon 3.00 close without announcing
    ``stopped`` (seen in these tests), so :meth:`request_stop` first stops the torrents over
    RPC (``-t all -S``, as a user pausing them), :meth:`stop` waits (at most
    :attr:`stop_announce_timeout` s) until the tracker has answered that announce, then
    SIGTERM ends the daemon. Peer id prefix ``-TR3000-``.
    """

    name = "transmission"
    peer_id_prefix = "-TR3000-"
    stop_signal = signal.SIGTERM
    stop_announce_timeout = 10.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_dir = self.workdir / "config"
        self.rpc_port = free_port()
        self._announce_before_stop: tuple[tuple[Any, ...], Any] | None = None

    def settings(self) -> dict[str, Any]:
        """The daemon's ``settings.json`` (see the class docstring)."""
        return {
            "dht-enabled": False,
            "pex-enabled": False,
            "lpd-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "blocklist-enabled": False,
            "peer-port": self.port,
            "peer-port-random-on-start": False,
            "bind-address-ipv4": self.host,
            "bind-address-ipv6": "::1",
            "rpc-enabled": True,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": self.rpc_port,
            "rpc-authentication-required": False,
            "rpc-whitelist-enabled": True,
            "rpc-whitelist": "127.0.0.1",
            "rpc-host-whitelist-enabled": False,
            "download-dir": str(self.download_dir),
            "incomplete-dir-enabled": False,
            "watch-dir-enabled": False,
            "start-added-torrents": True,
            "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "speed-limit-down-enabled": False,
            "speed-limit-up-enabled": False,
            "alt-speed-enabled": False,
            "queue-stalled-enabled": False,
            "download-queue-enabled": False,
            "seed-queue-enabled": False,
            "encryption": 1,
            "message-level": 2,
            "cache-size-mb": 4,
        }

    def command(self) -> list[str]:
        """``transmission-daemon -f -g CONFIG --log-info`` (settings written first)."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "settings.json").write_text(json.dumps(self.settings(), indent=1))
        return ["transmission-daemon", "-f", "-g", str(self.config_dir), "--log-info"]

    def remote(self, *args: str) -> str:
        """``transmission-remote 127.0.0.1:RPC ARGS`` in the client's namespace; its output."""
        argv = ["transmission-remote", f"127.0.0.1:{self.rpc_port}", *args]
        return run_bounded(self.in_netns(argv), env=self.environment(), timeout=20.0)

    def torrent_fields(self) -> dict[str, Any]:
        """The torrent's RPC fields from ``--debug -t 1 -i -it`` (details and trackerStats
        merged; ``{}`` if the daemon gave none)."""
        merged: dict[str, Any] = {}
        for reply in transmission_responses(self.remote("--debug", "-t", "1", "-i", "-it")):
            for torrent in reply.get("arguments", {}).get("torrents", []):
                merged.update(torrent)
        return merged

    def is_ready(self) -> bool:
        """True once the RPC lists torrents (``-l`` prints its ``Sum:`` line)."""
        return "Sum:" in self.remote("-l")

    def add_torrent(self) -> None:
        """``-a TORRENT -w DATA``.

        Raises:
            ClientFailure: the daemon did not accept it.
        """
        out = self.remote("-a", str(self.torrent), "-w", str(self.download_dir))
        if "success" not in out:
            raise ClientFailure(f"{self.name} refused the torrent: {out}\n{self.describe()}")

    @staticmethod
    def _tracker(fields: dict[str, Any]) -> dict[str, Any]:
        stats = fields.get("trackerStats") or [{}]
        return stats[0]

    def status(self) -> dict[str, Any]:
        """From the RPC fields (see the class docstring)."""
        fields = self.torrent_fields()
        tracker = self._tracker(fields)
        failed = tracker.get("hasAnnounced") and not tracker.get("lastAnnounceSucceeded")
        error = tracker.get("lastAnnounceResult", "") if failed else ""
        return {
            "complete": fields.get("leftUntilDone") == 0
            and fields.get("status") in TRANSMISSION_SEEDING,
            "checking": fields.get("status") in TRANSMISSION_CHECKING,
            "error": "" if tracker.get("lastAnnounceTimedOut") else error,
            "raw": json.dumps({k: fields.get(k) for k in ("leftUntilDone", "status", "error")})
            + "\n"
            + json.dumps(tracker),
        }

    def _announce_mark(self) -> tuple[tuple[Any, ...], Any]:
        """What the last answered announce left (time, result, counts), and the tracker's
        ``announceState`` now."""
        tracker = self._tracker(self.torrent_fields())
        keys = ("lastAnnounceTime", "lastAnnounceSucceeded", "lastAnnounceResult")
        keys += ("lastAnnouncePeerCount", "seederCount", "leecherCount")
        return tuple(tracker.get(k) for k in keys), tracker.get("announceState")

    def request_stop(self) -> None:
        """Stop the torrents over RPC (the daemon then announces ``stopped``), then SIGTERM
        once :meth:`stop` has seen that announce answered."""
        if self.proc is None or self._stop_requested or not self.is_running():
            return
        self._announce_before_stop = self._announce_mark()
        self.remote("-t", "all", "-S")
        self._stop_requested = True

    def stop(self) -> int | None:
        """Wait for the ``stopped`` announce to be answered (bounded), then stop the daemon
        (SIGTERM, SIGKILL after ``stop_timeout``)."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        if not self._stop_requested:
            self.request_stop()
        before = self._announce_before_stop

        def answered() -> bool:
            last, state = self._announce_mark()
            return before is not None and last != before[0] and state not in TRANSMISSION_ANNOUNCING

        if before is not None and self.is_running():
            wait_until(lambda: answered() or not self.is_running(), timeout=10.0)
        self._signal_group(self.stop_signal)
        return super().stop()


# Deluge's RPC watcher, run with /usr/bin/python3 (Deluge is in the system Python):
# DELUGE_SCRIPT RPC_PORT AUTH_FILE TORRENT SAVE_DIR MAX_SECONDS. It connects to deluged with
# Deluge's own client library (deluge.ui.client, which deluge-console is built on) as
# localclient (password from deluged's auth file), retrying until the daemon answers; adds the
# torrent with core.add_torrent_file; then prints {"kind": "status", ...} from
# core.get_torrent_status every 0.25 s. Other lines: {"kind": "waiting"|"added"|"error"|"exit"}.
# SIGTERM, the parent's death or the time limit end it (it disconnects; deluged runs on).
DELUGE_SCRIPT = r"""
import base64, json, logging, os, signal, sys, time

logging.disable(logging.CRITICAL)  # Deluge 2.0.3's logger breaks on Python 3.11 (findCaller)
from twisted.internet import defer, reactor, task
from deluge.ui.client import client

port, auth_path, torrent, save_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
deadline = time.monotonic() + float(sys.argv[5])
parent = os.getppid()
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
KEYS = ["state", "progress", "is_finished", "tracker_status", "total_done",
        "total_payload_download", "total_payload_upload", "num_peers", "message"]


def emit(**fields):
    print(json.dumps(fields, default=repr), flush=True)


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


def going():
    return not stop and time.monotonic() < deadline and os.getppid() == parent


@defer.inlineCallbacks
def main():
    try:
        while going() and not client.connected():
            try:
                with open(auth_path) as handle:
                    user, password = handle.readline().strip().split(":")[:2]
                yield client.connect("127.0.0.1", port, user, password)
            except Exception as exc:
                emit(kind="waiting", error=repr(exc))
                yield sleep(0.5)
        if not client.connected():
            return
        with open(torrent, "rb") as handle:
            dump = base64.b64encode(handle.read())
        options = {"download_location": save_path, "add_paused": False}
        torrent_id = yield client.core.add_torrent_file(os.path.basename(torrent), dump, options)
        emit(kind="added", torrent_id=torrent_id)
        while going():
            status = yield client.core.get_torrent_status(torrent_id, KEYS)
            emit(kind="status", **status)
            yield sleep(0.25)
    except Exception as exc:
        emit(kind="error", error=repr(exc))
    finally:
        emit(kind="exit", reason=stop[0] if stop else "time limit or parent gone")
        if client.connected():
            yield client.disconnect()
        reactor.stop()


reactor.callWhenRunning(main)
reactor.run(installSignalHandlers=False)
"""


def json_records(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a driver's log, one a line (other lines skipped)."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


class DelugeWatcher(ClientProcess):
    """The :data:`DELUGE_SCRIPT` process of a :class:`DelugeClient` (its own process group,
    log ``<workdir>/deluge-rpc.log``)."""

    name = "deluge-rpc"

    def __init__(self, *, owner: DelugeClient, max_seconds: float) -> None:
        super().__init__(torrent=owner.torrent, workdir=owner.workdir, port=owner.rpc_port)
        self.owner = owner
        self.netns = owner.netns
        self.max_seconds = max_seconds
        self.log_path = owner.workdir / "deluge-rpc.log"
        self.script = owner.workdir / "deluge_rpc.py"

    def command(self) -> list[str]:
        """``/usr/bin/python3 deluge_rpc.py RPC_PORT AUTH TORRENT SAVE_DIR MAX_SECONDS``."""
        self.script.write_text(DELUGE_SCRIPT)
        return [
            SYSTEM_PYTHON,
            "-u",
            str(self.script),
            str(self.owner.rpc_port),
            str(self.owner.config_dir / "auth"),
            str(self.torrent),
            str(self.owner.download_dir),
            str(self.max_seconds),
        ]


class DelugeClient(ControlledClient):
    """Deluge 2.0.3: ``deluged -d`` (no fork) with its RPC on 127.0.0.1, driven by
    :data:`DELUGE_SCRIPT`, a long-lived process using Deluge's own client library
    (``deluge.ui.client``, what ``deluge-console`` is built on): it logs in as ``localclient``
    with the password deluged writes to ``<config>/auth``, adds the torrent
    (``core.add_torrent_file``) and reports ``core.get_torrent_status`` four times a second.
    (``deluge-console`` itself spends about 7 CPU seconds importing its curses widgets on every
    call, too slow to poll with.)

    Deluge is libtorrent-rasterbar underneath and takes 127.0.0.1 peers, so it stays on
    loopback. ``core.conf`` (written before the start): ``dht``, ``upnp``, ``natpmp``, ``lsd``
    and ``utpex`` (peer exchange) off, no plugins, ``listen_ports`` [P, P] with
    ``random_port`` off and ``listen_interface`` = :attr:`host` (also ``-i``), no seeding
    limits, ``new_release_check`` and ``send_info`` off. deluged runs with ``-L none``: Deluge
    2.0.3's logger calls ``Logger.findCaller`` with an argument Python 3.11 no longer takes,
    so every log call would print a traceback instead. Complete: state ``Seeding``; the
    tracker's failure reason: ``tracker_status`` ``Error: <reason>``. SIGTERM makes deluged
    pause the session (libtorrent announces ``stopped``). Peer id prefix ``-DE203s-``
    (``s``: a stable release).

    Args:
        max_seconds: the watcher exits by itself after this long (a safety net).
    """

    name = "deluge"
    peer_id_prefix = "-DE203s-"
    stop_signal = signal.SIGTERM

    def __init__(self, *, max_seconds: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_dir = self.workdir / "config"
        self.rpc_port = free_port()
        self.watcher = DelugeWatcher(owner=self, max_seconds=max_seconds)

    def core_config(self) -> dict[str, Any]:
        """The keys of ``core.conf`` this driver sets (Deluge fills in the rest)."""
        return {
            "dht": False,
            "upnp": False,
            "natpmp": False,
            "lsd": False,
            "utpex": False,
            "enabled_plugins": [],
            "listen_ports": [self.port, self.port],
            "random_port": False,
            "listen_interface": self.host,
            "outgoing_interface": "",
            "daemon_port": self.rpc_port,
            "allow_remote": False,
            "download_location": str(self.download_dir),
            "torrentfiles_location": str(self.workdir),
            "copy_torrent_file": False,
            "move_completed": False,
            "add_paused": False,
            "auto_managed": True,
            "stop_seed_at_ratio": False,
            "remove_seed_at_ratio": False,
            "share_ratio_limit": -1.0,
            "seed_time_ratio_limit": -1.0,
            "seed_time_limit": -1,
            "new_release_check": False,
            "send_info": False,
            "pre_allocate_storage": False,
        }

    def command(self) -> list[str]:
        """``deluged -d -c CONFIG -u 127.0.0.1 -p RPC -i HOST -L none``."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"file": 1, "format": 1}, indent=4)
        body = json.dumps(self.core_config(), indent=4, sort_keys=True)
        (self.config_dir / "core.conf").write_text(header + body)
        return [
            "deluged",
            "-d",
            "-c",
            str(self.config_dir),
            "-u",
            "127.0.0.1",
            "-p",
            str(self.rpc_port),
            "-i",
            self.host,
            "-L",
            "none",
        ]

    def start(self) -> None:
        """Start deluged, then the watcher; wait until the watcher has added the torrent."""
        ClientProcess.start(self)
        self.watcher.start()
        super_start_wait = wait_until(
            lambda: self.is_ready() or not self.is_running() or not self.watcher.is_running(),
            timeout=self.ready_timeout,
        )
        if not super_start_wait or not self.is_running() or not self.watcher.is_running():
            raise ClientFailure(f"{self.name} never took the torrent\n{self.describe()}")

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line the watcher printed so far."""
        return json_records(self.watcher.log_text())

    def is_ready(self) -> bool:
        """True once the watcher reports the torrent added."""
        return any(r.get("kind") == "added" for r in self.records())

    def add_torrent(self) -> None:
        """Done by the watcher (see :meth:`start`)."""

    def status(self) -> dict[str, Any]:
        """The watcher's latest ``status`` record: ``state``, ``tracker_status``, ..."""
        statuses = [r for r in self.records() if r.get("kind") == "status"]
        last = statuses[-1] if statuses else {}
        tracker = str(last.get("tracker_status", ""))
        return {
            "complete": last.get("state") == "Seeding",
            "checking": last.get("state") == "Checking",
            "error": tracker.split("Error: ", 1)[1] if tracker.startswith("Error: ") else "",
            "raw": json.dumps(last),
        }

    def describe(self) -> str:
        """deluged's output, the last status and the watcher's log tail."""
        return f"{super().describe()}\n{self.watcher.describe()}"

    def request_stop(self) -> None:
        """Stop the watcher and signal deluged (it pauses the session: ``stopped``)."""
        self.watcher.request_stop()
        super().request_stop()

    def stop(self) -> int | None:
        """Stop the watcher, then deluged (each by its own process group)."""
        try:
            self.watcher.stop()
        finally:
            code = super().stop()
        return code


class ScgiXmlRpc:
    """A minimal XML-RPC client over SCGI on a unix socket (what rtorrent's
    ``network.scgi.open_local`` serves). Each call is one connection, bounded by ``timeout``.

    Raises (from :meth:`call`): OSError if the socket is not there; xmlrpc.client.Fault for an
    rtorrent error.
    """

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method(*params)`` and return its result."""
        body = xmlrpc.client.dumps(params, method).encode()
        headers = b"CONTENT_LENGTH\x00%d\x00SCGI\x001\x00" % len(body)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(b"%d:%s," % (len(headers), headers) + body)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        reply = b"".join(chunks)
        _, _, payload = reply.partition(b"\r\n\r\n")
        return xmlrpc.client.loads(payload)[0][0]


RTORRENT_FAILURE_RE = re.compile(r'Failure reason "(.*)"')


class RtorrentClient(ControlledClient):
    """rtorrent 0.9.8 (libtorrent-rakshasa 0.13.8), headless: ``rtorrent -n -o
    import=<workdir>/rtorrent.rc`` with ``system.daemon.set = true`` (0.9.7+: no curses UI, no
    terminal needed), driven through XML-RPC on a unix socket
    (``network.scgi.open_local = <workdir>/rpc.sock``).

    rtorrent takes 127.0.0.1 peers, so it stays on loopback. The config: ``directory``,
    ``session`` in the work directory; ``network.bind_address`` = :attr:`host`,
    ``network.port_range`` P-P with ``port_random`` off; ``dht.mode`` disable,
    ``protocol.pex`` off (rtorrent has no LPD, UPnP or NAT-PMP); ``trackers.use_udp`` off; logs
    (info and tracker debug) in ``<workdir>/rtorrent.log``. The torrent is added with
    ``load.start_verbose`` and ``d.directory.set``. State from ``d.multicall2``:
    ``d.complete`` (and not ``d.hashing``); the tracker's failure reason from ``d.message``
    (``Tracker: [Failure reason "..."]``). SIGTERM is a normal shutdown: rtorrent stops the
    torrents (announcing ``stopped``) and waits for the trackers. Peer id prefix
    ``-lt0D80-``.
    """

    name = "rtorrent"
    peer_id_prefix = "-lt0D80-"
    stop_signal = signal.SIGTERM
    ready_timeout = 20.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.socket_path = self.workdir / "rpc.sock"
        self.rpc = ScgiXmlRpc(self.socket_path)

    def config(self) -> str:
        """The ``rtorrent.rc`` (see the class docstring)."""
        session = self.workdir / "session"
        session.mkdir(exist_ok=True)
        return "\n".join(
            [
                "system.daemon.set = true",
                f'directory.default.set = "{self.download_dir}"',
                f'session.path.set = "{session}"',
                f'network.scgi.open_local = "{self.socket_path}"',
                f"network.bind_address.set = {self.host}",
                f"network.port_range.set = {self.port}-{self.port}",
                "network.port_random.set = no",
                "dht.mode.set = disable",
                "protocol.pex.set = no",
                "trackers.use_udp.set = no",
                "pieces.hash.on_completion.set = no",
                f'log.open_file = "main", "{self.workdir / "rtorrent.log"}"',
                'log.add_output = "info", "main"',
                'log.add_output = "tracker_debug", "main"',
                "",
            ]
        )

    def command(self) -> list[str]:
        """``rtorrent -n -o import=RC`` (the rc file written first)."""
        rc = self.workdir / "rtorrent.rc"
        rc.write_text(self.config())
        return ["rtorrent", "-n", "-o", f"import={rc}"]

    def describe(self) -> str:
        """Console output, last status, and the tail of rtorrent's own log."""
        try:
            own = (self.workdir / "rtorrent.log").read_text(errors="replace")
        except FileNotFoundError:
            own = ""
        return f"{super().describe()}\n--- rtorrent.log (tail) ---\n{own[-LOG_TAIL_CHARS:]}"

    def is_ready(self) -> bool:
        """True once the XML-RPC socket answers ``system.client_version``."""
        try:
            return bool(self.rpc.call("system.client_version"))
        except (OSError, xmlrpc.client.Error):
            return False

    def add_torrent(self) -> None:
        """``load.start_verbose("", TORRENT, 'd.directory.set="DATA"')``; the torrent must
        then be listed."""
        self.rpc.call(
            "load.start_verbose", "", str(self.torrent), f'd.directory.set="{self.download_dir}"'
        )
        if not wait_until(lambda: self.rpc.call("download_list", ""), timeout=10.0):
            raise ClientFailure(f"{self.name} did not load the torrent\n{self.describe()}")

    def status(self) -> dict[str, Any]:
        """From ``d.multicall2("", "main", d.hash, d.complete, d.hashing, d.message,
        d.completed_bytes, d.size_bytes, d.up.total, d.down.total)``."""
        fields = ("hash", "complete", "hashing", "message", "completed_bytes", "size_bytes")
        try:
            rows = self.rpc.call("d.multicall2", "", "main", *(f"d.{f}=" for f in fields))
        except (OSError, xmlrpc.client.Error) as exc:
            return {"complete": False, "checking": False, "error": "", "raw": repr(exc)}
        row = dict(zip(fields, rows[0], strict=True)) if rows else {}
        failure = RTORRENT_FAILURE_RE.search(row.get("message", ""))
        return {
            "complete": bool(row.get("complete")) and not row.get("hashing"),
            "checking": bool(row.get("hashing")),
            "error": failure.group(1) if failure else "",
            "raw": repr(row),
        }
