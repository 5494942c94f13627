"""Helpers of the PBTS swarm tests (``test_peer_figures.py``, ``test_peer_mixed.py``,
``test_peer_faults.py``): the site as tracker and receipts API (the ``live_server`` thread, or a
``manage.py runserver`` process that a test stops and starts again), members with registered
keys, torrents of random content, a background statistics flush, and readers of a peer's
receipts box on disk. The peers themselves are ``python -m receipts.peer`` processes
(:class:`receipts.tests.peer_helpers.PbtsPeer`)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from receipts import client
from receipts.format import Receipt
from receipts.tests.peer_helpers import REPO, PbtsPeer, make_torrent
from tracker import announce_views
from tracker.models import ClientPrefix, Member, Torrent
from tracker.services.members import member_api_token
from tracker.services.torrents import torrent_download, torrent_upload
from tracker.tests.factories import MemberFactory
from tracker.tests.realclients import free_port, wait_until
from tracker.tests.test_realclients import AnnounceRecorder

try:  # the announce runtime's module (renamed from tracker.tracking)
    from tracker import announce_runtime as runtime_module
except ImportError:  # pragma: no cover - the older layout
    from tracker import tracking as runtime_module  # type: ignore[no-redef]

CLIENTS = (("-PB0", "PBTS peer"), ("-LT20", "libtorrent"), ("A2-", "aria2"))


@dataclass
class Site:
    """The site under test: its base URL and (in-process site only) every announce."""

    url: str
    announces: AnnounceRecorder | None = None


def whitelist() -> None:
    """Allow the PBTS peer, libtorrent and aria2 (their peer_id prefixes, BEP 20)."""
    for prefix, name in CLIENTS:
        ClientPrefix.objects.update_or_create(
            prefix=prefix, defaults={"name": name, "is_allowed": True}
        )


@contextlib.contextmanager
def live_site(live_server, settings, monkeypatch) -> Iterator[Site]:
    """The ``live_server`` thread on 127.0.0.1 as tracker (HTTP announces, a fresh in-process
    peer store, announces recorded) and receipts API; statistics are flushed by the test
    (``runtime_module.flush_now()`` or :class:`Flusher`)."""
    host, port = live_server.thread.httpd.server_address[:2]
    assert host == "127.0.0.1"
    settings.PBTS_BASE_URL = f"http://127.0.0.1:{port}"
    settings.PBTS_UDP_PORT = 0
    monkeypatch.setattr(runtime_module, "_runtime", runtime_module.build_runtime(redis_url=""))
    recorder = AnnounceRecorder(announce_views.handle_announce)
    monkeypatch.setattr(announce_views, "handle_announce", recorder)
    runtime_module.policy.cache_clear()
    whitelist()
    try:
        yield Site(settings.PBTS_BASE_URL, recorder)
    finally:
        runtime_module.policy.cache_clear()


@contextlib.contextmanager
def launcher() -> Iterator:
    """``start(process)`` starts a client process; every one is stopped at the end (SIGTERM,
    then SIGKILL after its timeout), pass or fail."""
    from tracker.tests.realclients import stop_all

    started = []

    def start(process):
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        stop_all(started)


@dataclass
class PbtsMember:
    """A member with an API token and a BLS key file registered at the site."""

    member: Member
    token: str
    key: Path


def pbts_member(site_url: str, tmp_path: Path, **member_kwargs) -> PbtsMember:
    """A new member whose key (made here, as on the member's machine) is registered through
    the site's API."""
    member = MemberFactory(**member_kwargs)
    token = member_api_token(member)
    key = tmp_path / f"{member.username}.key"
    pair = client.create_key_file(key)
    code, answer = client.register(site_url, token, pair, timeout=60)
    assert code == 201, answer
    return PbtsMember(member, token, key)


def random_files(seed: int, sizes: list[tuple[str, int]]) -> list[tuple[str, bytes]]:
    """(path, content) of random content, the same for the same seed."""
    rng = random.Random(seed)
    return [(path, rng.randbytes(size)) for path, size in sizes]


def upload(uploader: Member, files: list[tuple[str, bytes]], *, name: str, piece: int) -> Torrent:
    """The torrent of ``files`` uploaded by ``uploader`` (approved at once)."""
    torrent = torrent_upload(
        uploader=uploader, data=make_torrent(files, name=name, piece_length=piece)
    )
    assert torrent.status == "approved"
    return torrent


def member_torrent(tmp_path: Path, torrent: Torrent, member: Member, role: str) -> Path:
    """``member``'s .torrent of ``torrent`` (with their passkey announce URL)."""
    path = tmp_path / f"{role}.torrent"
    path.write_bytes(torrent_download(torrent=torrent, member=member))
    return path


def workdir(tmp_path: Path, role: str) -> Path:
    path = tmp_path / role
    path.mkdir()
    return path


def receipt_options(site_url: str, who: PbtsMember, *extra: str) -> list[str]:
    """``--key``/``--site`` for ``who``; by default reports only at stop."""
    options = ["--key", str(who.key), "--site", site_url]
    if "--report-every" not in extra:
        options += ["--report-every", "1000000", "--report-seconds", "100000"]
    return [*options, *extra]


def box_path(peer: PbtsPeer) -> Path:
    """The receipts box of a peer process (``~/.pbts/box.sqlite3``, HOME is its workdir)."""
    return peer.workdir / ".pbts" / "box.sqlite3"


def box_rows(path: Path) -> list[tuple[Receipt, str, str]]:
    """(receipt, state, site status) of every receipt kept in the box at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT data, state, site_status FROM receipts").fetchall()
    return [(Receipt.from_bytes(data), state, status or "") for data, state, status in rows]


def pieces_once(receipts: list[Receipt]) -> Counter[int]:
    """How many receipts name each piece index."""
    return Counter(r.piece_index for r in receipts)


def kill9(peer: PbtsPeer) -> None:
    """SIGKILL to the peer's whole process group (it and its signing process), then reap."""
    assert peer.proc is not None
    os.killpg(peer.proc.pid, signal.SIGKILL)
    assert wait_until(lambda: not peer.is_running(), timeout=10)
    peer.stop()


def again(peer: PbtsPeer, run: int, **changes) -> PbtsPeer:
    """The same peer (command, torrent, directory, key, box, port) as a new process; its
    output goes to ``client-<run>.log`` (the first run's log is kept)."""
    fields = dict(
        command=peer.subcommand,
        torrent=peer.torrent,
        workdir=peer.workdir,
        port=peer.port,
        extra=peer.extra,
        token=peer.token,
        stop_signal=peer.stop_signal,
    )
    fields.update(changes)
    new = PbtsPeer(**fields)
    new.log_path = peer.workdir / f"client-{run}.log"
    return new


class Flusher:
    """The tracker's statistics flush every ``period`` seconds in a thread of this process
    (the in-process site's announces land in the database as on a real site, so a member is
    seen in a swarm soon after announcing)."""

    def __init__(self, period: float = 0.5) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-flusher", daemon=True)
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.period):
                try:
                    runtime_module.flush_now()
                except Exception as exc:  # kept for the test to see
                    self.errors.append(exc)
        finally:
            connection.close()

    def __enter__(self) -> Flusher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        runtime_module.flush_now()


class RunServer:
    """``manage.py runserver 127.0.0.1:PORT --noreload`` in its own process, on this test run's
    database (the test's committed rows are the site's), with the production settings module
    and the embedded defaults otherwise: in-process peer store and statistics flush every
    second, Celery eager (each report is verified in the web process after it commits). The
    test stops it (the site is down: connections refused) and starts it again on the same
    port; stopped by PID at the end."""

    def __init__(self, settings, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        db = settings.DATABASES["default"]
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        self.env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.env.update(
            DATABASE_URL=f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            DJANGO_SETTINGS_MODULE="pbts_site.settings",
            REDIS_URL="",
            CELERY_BROKER_URL="",
            DEBUG="false",
            PBTS_SECURE="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PBTS_BASE_URL=self.url,
            PBTS_UDP_PORT="0",
            PBTS_FLUSH_SECONDS="1",
            PBTS_REPORT_THROTTLE="100000/hour",
            PYTHONUNBUFFERED="1",
            PBTS_ENV_FILE=str(workdir / "no.env"),  # not the checkout's .env
        )

    def log_path(self, run: int) -> Path:
        return self.workdir / f"runserver-{run}.log"

    def start(self, timeout: float = 60.0) -> None:
        """Start the site and wait until ``/health`` answers."""
        assert self.proc is None
        self.runs += 1
        with self.log_path(self.runs).open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(lambda: self.answers() or self.proc.poll() is not None, timeout=timeout):
            raise AssertionError(f"runserver did not start in {timeout} s\n{self.describe()}")
        if self.proc.poll() is not None:
            raise AssertionError(f"runserver exited\n{self.describe()}")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status in (200, 503)
        except urllib.error.HTTPError as exc:
            return exc.code == 503
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s) to the site's process, by PID; reaped."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def describe(self) -> str:
        text = ""
        for run in range(1, self.runs + 1):
            with contextlib.suppress(OSError):
                text += f"--- runserver run {run} ---\n"
                text += self.log_path(run).read_text(errors="replace")[-4000:]
        return text


def wait_for(predicate, what: str, timeout: float, *context) -> None:
    """Wait (bounded) for ``predicate``; fail with ``what`` and the descriptions of
    ``context`` (peers, the site) otherwise."""
    if not wait_until(predicate, timeout=timeout):
        details = "\n".join(c.describe() if hasattr(c, "describe") else str(c) for c in context)
        raise AssertionError(f"{what}: not reached in {timeout} s\n{details}")


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 1)
