"""Helpers of the PBTS peer tests (``test_peer_*.py``): real .torrent files for content made
here, and a driver for ``python -m receipts.peer`` processes (no Django in them)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import fastbencode

from receipts import bls
from receipts.format import Receipt
from tracker.tests.realclients import ClientFailure, ClientProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
BOX_REALM = b"\x07" * 32
BOX_UPLOADER = bls.keygen(b"\x01" * 32)
BOX_DOWNLOADER = bls.keygen(b"\x02" * 32)


@functools.lru_cache(maxsize=4096)
def box_entry(
    i: int, *, realm: bytes = BOX_REALM, uploader: bytes = BOX_UPLOADER[1]
) -> tuple[Receipt, bytes, bytes]:
    """(Receipt, bytes, signature) number ``i`` for the receipts box tests: piece ``i`` of
    a made-up torrent, signed by BOX_DOWNLOADER (importable without Django, for the
    subprocesses of those tests)."""
    receipt = Receipt(
        realm=realm,
        info_hash=b"\x09" * 20,
        piece_index=i,
        piece_length=16384,
        uploader_pk=uploader,
        downloader_pk=BOX_DOWNLOADER[1],
        time_bucket=28_333_333,
    )
    data = receipt.to_bytes()
    return receipt, data, bls.sign(BOX_DOWNLOADER[0], data)


def make_torrent(
    files: list[tuple[str, bytes]],
    *,
    name: str = "content",
    piece_length: int = 16384,
    announce: str = "http://127.0.0.1:1/announce",
    private: bool = True,
    single: bool = False,
    padding: bool = False,
    announce_list: list[list[str]] | None = None,
) -> bytes:
    """A v1 .torrent with real piece hashes for ``files`` (path with '/', content).

    ``single``: a single-file torrent of ``files[0]`` named ``name``. ``padding``: BEP 47
    padding files after every file but the last, so each file starts on a piece boundary.
    """
    stream = bytearray()
    info: dict[bytes, Any] = {b"name": name.encode(), b"piece length": piece_length}
    if single:
        assert len(files) == 1
        stream += files[0][1]
        info[b"length"] = len(files[0][1])
    else:
        entries = []
        for i, (path, content) in enumerate(files):
            entries.append(
                {b"length": len(content), b"path": [p.encode() for p in path.split("/")]}
            )
            stream += content
            pad = -len(stream) % piece_length
            if padding and pad and i < len(files) - 1:
                entries.append({b"attr": b"p", b"length": pad, b"path": [b".pad", b"%d" % pad]})
                stream += bytes(pad)
        info[b"files"] = entries
    info[b"pieces"] = b"".join(
        hashlib.sha1(stream[i : i + piece_length]).digest()
        for i in range(0, len(stream), piece_length)
    )
    if private:
        info[b"private"] = 1
    top: dict[bytes, Any] = {b"announce": announce.encode(), b"info": info}
    if announce_list is not None:
        top[b"announce-list"] = [[u.encode() for u in tier] for tier in announce_list]
    return fastbencode.bencode(top)


def write_files(root: Path, name: str, files: list[tuple[str, bytes]], *, single: bool) -> None:
    """Put the content on disk as a client would find it under ``root``."""
    if single:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(files[0][1])
        return
    for path, content in files:
        target = root / name / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def peer_environment(home: Path) -> dict[str, str]:
    """The environment of a peer process: no Django settings, the repository importable, HOME
    in the test's directory, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "DJANGO_SETTINGS_MODULE" and not k.lower().endswith("_proxy")
    }
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(home)
    return env


class PbtsPeer(ClientProcess):
    """``python -m receipts.peer COMMAND TORRENT DIR --json ...`` in its own process group
    (the drivers of tracker/tests/realclients.py: bounded waits, stopped at teardown). It prints
    one JSON record per line: ``status`` every second, ``complete``, ``exit`` (the final
    summary). SIGTERM stops it cleanly (``stopped`` announce, last report)."""

    name = "pbts-peer"
    peer_id_prefix = "-PB0"
    stop_signal = signal.SIGTERM

    def __init__(
        self,
        *,
        command: str,
        extra: list[str],
        token: str = "",
        stop_signal: signal.Signals = signal.SIGTERM,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stop_signal = stop_signal
        self.subcommand = command
        self.extra = extra
        self.token = token

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "receipts.peer",
            self.subcommand,
            str(self.torrent),
            str(self.download_dir),
            "--json",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra,
        ]

    def environment(self) -> dict[str, str]:
        env = peer_environment(self.workdir)
        if self.token:
            env["PBTS_TOKEN"] = self.token
        return env

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line printed so far."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def last(self, kind: str) -> dict[str, Any]:
        """The latest record of ``kind`` ({} if none)."""
        found = [r for r in self.records() if r.get("kind") == kind]
        return found[-1] if found else {}

    def _wait(self, predicate, what: str, timeout: float) -> None:
        wait_until(lambda: predicate() or not self.is_running(), timeout=timeout)
        if not predicate():
            raise ClientFailure(
                f"{self.name}: {what} not reached in {timeout} s\n{self.describe()}"
            )

    def wait_seeding(self, timeout: float = 60.0) -> None:
        self._wait(lambda: self.last("status").get("state") == "seeding", "seeding", timeout)

    def wait_complete(self, timeout: float = 120.0) -> None:
        self._wait(lambda: bool(self.last("complete")), "complete", timeout)

    def wait_exit(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the process to end by itself; returns its ``exit`` record."""
        self._wait(lambda: not self.is_running(), "exit", timeout)
        self.stop()
        return self.last("exit")
