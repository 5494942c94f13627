"""A local development chain: anvil (npm ``@foundry-rs/anvil``, pinned in package.json) run as
a child process on 127.0.0.1.

Used by the tests (one anvil per fixture, on a free port), the gas bench and ``make chain``
(``manage.py chain_devnet``). The binary is run directly, not through the npm wrapper (which
forks it and could leave it behind), and it is stopped by its own PID. anvil gets a private
``HOME`` so it leaves nothing under the user's ``~/.foundry``. No Django import.

The dev accounts' keys are never written here: anvil prints them itself (``--config-out``), and
:meth:`Anvil.dev_private_key` reads them from that file.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from core.processes import stop_process

BASE_DIR = Path(__file__).resolve().parent.parent
_PLATFORMS = {("Linux", "x86_64"): "linux-amd64", ("Linux", "aarch64"): "linux-arm64"}


class AnvilError(RuntimeError):
    """anvil is missing, would not start, or did not answer in time."""


def anvil_binary() -> Path:
    """Path of the anvil binary shipped by ``@foundry-rs/anvil-<platform>`` in node_modules.

    Raises:
        AnvilError: not installed (run ``npm ci``) or no build for this platform.
    """
    key = (platform.system(), platform.machine())
    if key not in _PLATFORMS:
        raise AnvilError(f"no anvil build for {key}")
    path = BASE_DIR / "node_modules" / "@foundry-rs" / f"anvil-{_PLATFORMS[key]}" / "bin" / "anvil"
    if not path.is_file():
        raise AnvilError(f"{path} is missing: run `npm ci` in {BASE_DIR}")
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """One anvil process on 127.0.0.1.

    Args:
        port: TCP port (a free one when None); kept across :meth:`stop`/:meth:`start`.
        state_file: ``--state`` file: loaded at start if present, written on exit (and every
            ``state_interval`` seconds), so the chain survives a restart.
        accounts, balance_ether: dev accounts and the balance of each, ether.
        extra_args: more anvil arguments.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        state_file: Path | None = None,
        state_interval: int = 0,
        accounts: int = 10,
        balance_ether: int = 10_000,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.state_file = state_file
        self.state_interval = state_interval
        self.accounts = accounts
        self.balance_ether = balance_ether
        self.extra_args = extra_args
        self.workdir = Path(tempfile.mkdtemp(prefix="pbts-anvil-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._config: dict | None = None

    @property
    def url(self) -> str:
        """The JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The running process's id, or None."""
        return self.process.pid if self.process and self.process.poll() is None else None

    def start(self, *, timeout: float = 15.0) -> Anvil:
        """Start anvil and wait (at most ``timeout`` seconds) until it answers ``eth_chainId``.

        Raises:
            AnvilError: missing binary, early exit, or no answer in time (the process is then
                stopped).
        """
        if self.pid is not None:
            return self
        args = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_ether),
            "--config-out",
            str(self.workdir / "config.json"),
        ]
        if self.state_file is not None:
            args += ["--state", str(self.state_file)]
            if self.state_interval:
                args += ["--state-interval", str(self.state_interval)]
        args += list(self.extra_args)
        env = {"HOME": str(self.workdir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        log = open(self.workdir / "anvil.log", "ab")  # noqa: SIM115 (owned by the process)
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with {self.process.returncode}: {self.log_tail()}")
            if self._answers():
                self._config = None
                return self
            time.sleep(0.05)
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.url} within {timeout} s")

    def _answers(self) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return b"result" in response.read()
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL after ``timeout`` seconds); anvil
        writes its ``--state`` file on the way out."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, grace=timeout, kill_wait=timeout)

    def close(self) -> None:
        """Stop and remove the working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, size: int = 2000) -> str:
        """The end of anvil's output (for error messages)."""
        try:
            return (self.workdir / "anvil.log").read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def dev_private_key(self, index: int = 0) -> str:
        """Dev account ``index``'s private key (0x hex), as anvil itself wrote it to its
        ``--config-out`` file. These keys come from the public ``test test ... junk``
        mnemonic: development chains only, never a real one."""
        if self._config is None:
            self._config = json.loads((self.workdir / "config.json").read_text())
        return str(self._config["private_keys"][index])

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
