"""The HTTP trackers under test: opentracker, Ocelot (:mod:`bench.lib.ocelot`), the Django view
under gunicorn, and trackerd with one and two workers; the last three also from a baseline
checkout (``--baseline``), so that two versions of the code are measured side by side in one run.

Every PBTS target gets its own Redis key prefix (idle servers never replay another's peers)
and its own Celery worker with beat and broker, which flushes the statistics to PostgreSQL as
in production.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.lib.data import BenchData
from bench.lib.env import ROOT, bench_env
from bench.lib.ocelot import Ocelot
from bench.lib.procs import Server, free_port, start_server

DEFAULT_TARGETS = "opentracker,django,trackerd"
#: The suffix of a baseline checkout's targets (``trackerd-1w@base``).
BASELINE = "@base"
# Redis databases of each target's Celery broker (the peer store and cache use REDIS_URL's).
_BROKER_DBS = {
    "django": 7,
    "trackerd-1w": 8,
    "trackerd-2w": 9,
    f"django{BASELINE}": 10,
    f"trackerd-1w{BASELINE}": 11,
    f"trackerd-2w{BASELINE}": 12,
}


class TargetHooks(Protocol):
    """What a target with a database of its own (Ocelot) tells the benchmark."""

    def announces(self, port: int) -> int | None:
        """Its own count of announces answered since it started (``None``: it cannot say)."""

    def service_pids(self) -> list[int]:
        """The processes whose CPU is its database side (instead of Redis and PostgreSQL)."""

    def wait_written(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every announce answered so far is in its database;
        ``False`` if that was not seen in time."""

    def stop(self) -> None:
        """Stop what it started besides its server (its database server)."""


@dataclass
class Target:
    """A tracker under test. ``start`` returns its running server; ``unavailable`` says why
    a target cannot run (its rows then read "not available"). ``passkey_first``: its announce
    path is Gazelle's ``/<passkey>/announce``; ``hooks``: its own count, database and cleanup."""

    name: str
    passkey_in_path: bool
    start: Callable[[Path], Server] | None
    cache_prefix: str = ""
    unavailable: str = ""
    server: Server | None = None
    passkey_first: bool = False
    hooks: TargetHooks | None = None


def start_opentracker(workdir: Path, info_hashes: list[str]) -> Server:
    """opentracker on a free port with the bench info_hashes as its whitelist.

    Raises:
        RuntimeError: opentracker is not installed, or did not start.
    """
    binary = shutil.which("opentracker")
    if binary is None:
        raise RuntimeError("opentracker not installed (apt-get install -y opentracker)")
    (workdir / "whitelist.txt").write_text("\n".join(info_hashes) + "\n")
    port = free_port()
    conf = workdir / "opentracker.conf"
    conf.write_text(
        f"listen.tcp 127.0.0.1:{port}\naccess.whitelist {workdir / 'whitelist.txt'}\n"
        "access.stats 127.0.0.1\n"  # its own count of answered announces (/stats?mode=conn)
    )
    return start_server(
        "opentracker", [binary, "-f", str(conf)], port=port, env={}, workdir=workdir
    )


def opentracker_announces(port: int) -> int | None:
    """opentracker's own count of announces answered since it started (the second line of
    ``/stats?mode=conn``: successful announces); ``None`` if it does not say."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/stats?mode=conn")
        lines = conn.getresponse().read().decode("latin-1").splitlines()
        conn.close()
        return int(lines[1])
    except (OSError, http.client.HTTPException, IndexError, ValueError):
        return None


def target_env(name: str, prefix: str) -> dict[str, str]:
    """The bench env (Redis key prefix ``prefix``) plus the target's own Celery broker:
    statistics are flushed to PostgreSQL by a Celery worker with beat, as in production, not
    by the server."""
    env = bench_env(prefix, legacy_prefix=name.endswith(BASELINE))
    env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{_BROKER_DBS[name]}"
    return env


def start_flusher(server: Server, env: dict[str, str], workdir: Path, cwd: Path = ROOT) -> Server:
    """Start the target's Celery worker with beat (one process, solo pool) beside it, from
    the checkout ``cwd``."""
    cmd = [sys.executable, "-m", "celery", "-A", "pbts_site", "worker", "-B", "--pool=solo"]
    cmd += ["--loglevel=WARNING", f"--schedule={workdir / f'beat-{server.name}'}"]
    with open(workdir / f"{server.name}-celery.log", "wb") as log:
        server.flusher = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return server


def start_gunicorn(workdir: Path, prefix: str, *, name: str = "django", cwd: Path = ROOT) -> Server:
    """The Django view of the checkout ``cwd`` under gunicorn: 2 workers x 4 threads
    (gthread), bench env."""
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "gunicorn"),
        "pbts_site.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--threads=4",
        "--worker-class=gthread",
        "--log-level=warning",
    ]
    env = target_env(name, prefix)
    server = start_server(name, cmd, port=port, env=env, workdir=workdir, cwd=cwd)
    return start_flusher(server, env, workdir, cwd)


def trackerd_available(root: Path = ROOT) -> bool:
    """Whether the ``trackerd`` management command exists in the checkout ``root`` (now)."""
    return (root / "tracker" / "management" / "commands" / "trackerd.py").is_file()


def start_trackerd(
    workdir: Path, prefix: str, workers: int, *, name: str = "", cwd: Path = ROOT
) -> Server:
    """``manage.py trackerd --host 127.0.0.1 --port N --workers W`` of the checkout ``cwd``,
    with the bench env (no UDP: that is ``bench/udp.py``'s)."""
    port = free_port()
    cmd = [sys.executable, "manage.py", "trackerd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--udp-port", "0"]
    name = name or f"trackerd-{workers}w"
    env = target_env(name, prefix)
    server = start_server(name, cmd, port=port, env=env, workdir=workdir, cwd=cwd)
    return start_flusher(server, env, workdir, cwd)


def build_targets(
    names: tuple[str, ...], data: BenchData, baseline: Path | None = None
) -> list[Target]:
    """The targets asked for (``names``: ``opentracker``, ``ocelot``, ``django``, ``trackerd``
    or only ``trackerd-1w`` / ``trackerd-2w``), in interleaving order; with ``baseline``, each
    PBTS target of that checkout right after the same one of this checkout."""
    targets = []
    if "opentracker" in names:
        targets.append(
            Target("opentracker", False, lambda wd: start_opentracker(wd, data.info_hashes))
        )
    if "ocelot" in names:
        ocelot = Ocelot(data)
        targets.append(
            Target(
                "ocelot",
                True,
                ocelot.start,
                unavailable=ocelot.unavailable,
                passkey_first=True,
                hooks=ocelot,
            )
        )
    checkouts = [("", ROOT)] + ([(BASELINE, baseline)] if baseline is not None else [])
    if "django" in names:
        for suffix, root in checkouts:
            name, prefix = f"django{suffix}", f"bench-django{suffix}"
            targets.append(
                Target(
                    name,
                    True,
                    lambda wd, n=name, p=prefix, r=root: start_gunicorn(wd, p, name=n, cwd=r),
                    prefix,
                )
            )
    for workers in (1, 2):
        if "trackerd" not in names and f"trackerd-{workers}w" not in names:
            continue
        for suffix, root in checkouts:
            name, prefix = f"trackerd-{workers}w{suffix}", f"bench-trackerd{workers}{suffix}"
            targets.append(
                Target(
                    name,
                    True,
                    lambda wd, p=prefix, w=workers, n=name, r=root: start_trackerd(
                        wd, p, w, name=n, cwd=r
                    ),
                    prefix,
                    "" if trackerd_available(root) else "not available",
                )
            )
    return targets
