"""PBTS peer speed: a 256 MiB torrent on loopback, libtorrent -> libtorrent and PBTS -> PBTS
(receipts on), through the real site (tracker and receipts API) in the same run.

    .venv/bin/python bench/peer.py [--size-mib 256] [--piece-kib 256] [--rounds 1]

It owns the PostgreSQL database ``pbts_peer_bench`` (``PBTS_PEER_BENCH_DATABASE_URL`` picks
another), migrates it, and serves the site with ``manage.py runserver`` on a free 127.0.0.1
port (the embedded defaults otherwise: in-process peer store and statistics flush every second,
Celery eager, so each report is verified in the web process right after it commits). Members,
keys (registered with the receipts client) and the torrent are made fresh every run.

Each round (the two orders alternate): libtorrent seeds, libtorrent leeches (Debian's
python3-libtorrent, the drivers of tracker/tests/realclients.py); a PBTS seeder (``python -m
receipts.peer seed``, reporting every 1024 receipts or 60 s, its default) and a PBTS leecher
(``download --seed-ratio 0``); with ``--plain``, PBTS without keys (no receipts). A time is from
starting the leecher's process to seeing it complete (0.1 s polling for both), after ``sync``.
Printed per round: both times, their ratio (target: PBTS at most 2x), receipts signed and the
leecher's signing rate, the seeder's checks per second, and the site's verification: receipts
verified, and verified per second from the first report's arrival to the last receipt's
verification; then the medians. The machine's load average is printed before each round: other
work on the machine moves these figures a lot. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if not __package__:  # run as a file: the repository root first (receipts, tracker, bench)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastbencode

from receipts.tests.peer_helpers import PbtsPeer
from tracker.tests.realclients import LibtorrentClient, free_port, stop_all

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "PBTS_PEER_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pbts_peer_bench"
)
TIMEOUT = 600.0


def site_env(port: int) -> dict[str, str]:
    """The site's environment (and this process's, for the Django calls made here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PBTS_", "CELERY_"))}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL="",
        DEBUG="false",
        SECRET_KEY="bench-" + secrets.token_urlsafe(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PBTS_BASE_URL=f"http://127.0.0.1:{port}",
        PBTS_UDP_PORT="0",
        PBTS_FLUSH_SECONDS="1",
        PBTS_SECURE="false",
        DJANGO_SETTINGS_MODULE="pbts_site.settings",
        LOG_LEVEL="WARNING",
    )
    return env


def ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def make_content(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 24))
            out.write(chunk)
            left -= len(chunk)


def make_torrent(path: Path, piece_length: int) -> bytes:
    pieces = []
    with path.open("rb") as data:
        while chunk := data.read(piece_length):
            pieces.append(hashlib.sha1(chunk).digest())
    info = {
        b"name": path.name.encode(),
        b"length": path.stat().st_size,
        b"piece length": piece_length,
        b"pieces": b"".join(pieces),
    }
    return fastbencode.bencode({b"announce": b"http://placeholder.invalid/a", b"info": info})


class Site:
    """Members, the torrent and the figures, through Django in this process."""

    def __init__(self) -> None:
        import django

        django.setup()
        from tracker.models import ClientPrefix

        for prefix, name in (("-PB0", "PBTS peer"), ("-LT20", "libtorrent")):
            ClientPrefix.objects.update_or_create(
                prefix=prefix, defaults={"name": name, "is_allowed": True}
            )

    def member(self, role: str):
        from tracker.services.members import member_api_token
        from tracker.tests.factories import MemberFactory

        member = MemberFactory(username=f"bench-{role}-{secrets.token_hex(4)}")
        return member, member_api_token(member)

    def torrent(self, uploader, data: bytes):
        from tracker.services.torrents import torrent_upload

        return torrent_upload(uploader=uploader, data=data)

    def member_torrent(self, torrent, member, path: Path) -> Path:
        from tracker.services.torrents import torrent_download

        path.write_bytes(torrent_download(torrent=torrent, member=member))
        return path

    def verification(self, reporter, expected: int, timeout: float = 300.0) -> dict:
        """Wait until ``expected`` receipts of ``reporter`` are settled; the site's figures."""
        from django.db.models import Max, Min, Sum

        from receipts.models import Receipt, Report

        deadline = time.monotonic() + timeout
        rows = Receipt.objects.filter(report__reporter=reporter)
        while time.monotonic() < deadline:
            if rows.exclude(status="queued").count() >= expected:
                break
            time.sleep(0.5)
        first = Report.objects.filter(reporter=reporter).aggregate(t=Min("created_at"))["t"]
        last = rows.filter(status="verified").aggregate(t=Max("verified_at"))["t"]
        verified = rows.filter(status="verified").count()
        span = (last - first).total_seconds() if first and last else float("nan")
        refused = dict(
            rows.filter(status="refused").values_list("reason").annotate(n=Sum(1)).order_by()
        )
        return {"verified": verified, "span": span, "refused": refused}

    def ledgers(self, *members) -> list[tuple[int, int]]:
        from reputation.models import Ledger

        return [
            tuple(
                Ledger.objects.filter(member=m).values_list(
                    "verified_uploaded", "verified_downloaded"
                )[0]
            )
            for m in members
        ]


def timed(seed, leech) -> float:
    """Seconds from starting the leecher to seeing it complete (the seeder seeding first;
    dirty pages of earlier runs written back before, so no run pays for another's)."""
    seed.start()
    seed.wait_seeding(timeout=TIMEOUT)
    os.sync()
    time.sleep(0.5)
    began = time.monotonic()
    leech.start()
    leech.wait_complete(timeout=TIMEOUT)
    return time.monotonic() - began


def libtorrent_round(site: Site, torrent, source: Path, work: Path) -> float:
    seeder, _ = site.member("lt-seed")
    leecher, _ = site.member("lt-leech")
    (work / "lt-seed").mkdir()
    (work / "lt-leech").mkdir()
    seed = LibtorrentClient(
        torrent=site.member_torrent(torrent, seeder, work / "lt-seed.torrent"),
        workdir=work / "lt-seed",
        max_seconds=TIMEOUT,
    )
    seed.download_dir.mkdir()
    os.link(source, seed.download_dir / source.name)
    leech = LibtorrentClient(
        torrent=site.member_torrent(torrent, leecher, work / "lt-leech.torrent"),
        workdir=work / "lt-leech",
        max_seconds=TIMEOUT,
    )
    try:
        return timed(seed, leech)
    finally:
        stop_all([leech, seed])


def plain_round(site: Site, torrent, source: Path, work: Path) -> float:
    """PBTS -> PBTS without keys (no receipts): what the receipts cost."""
    seeder, _ = site.member("plain-seed")
    leecher, _ = site.member("plain-leech")
    (work / "plain-seed").mkdir()
    (work / "plain-leech").mkdir()
    seed = PbtsPeer(
        command="seed",
        torrent=site.member_torrent(torrent, seeder, work / "plain-seed.torrent"),
        workdir=work / "plain-seed",
        extra=[],
    )
    seed.download_dir.mkdir()
    os.link(source, seed.download_dir / source.name)
    leech = PbtsPeer(
        command="download",
        torrent=site.member_torrent(torrent, leecher, work / "plain-leech.torrent"),
        workdir=work / "plain-leech",
        extra=["--seed-ratio", "0"],
    )
    try:
        return timed(seed, leech)
    finally:
        stop_all([leech, seed])


def pbts_round(site: Site, torrent, source: Path, work: Path, url: str) -> dict:
    from receipts import client

    seeder, seed_token = site.member("pbts-seed")
    leecher, leech_token = site.member("pbts-leech")
    keys = {}
    for role, token in (("seed", seed_token), ("leech", leech_token)):
        keys[role] = work / f"{role}.key"
        pair = client.create_key_file(keys[role])
        assert client.register(url, token, pair, timeout=60)[0] == 201
    (work / "pbts-seed").mkdir()
    (work / "pbts-leech").mkdir()
    seed = PbtsPeer(
        command="seed",
        torrent=site.member_torrent(torrent, seeder, work / "pbts-seed.torrent"),
        workdir=work / "pbts-seed",
        extra=["--key", str(keys["seed"]), "--site", url],
        token=seed_token,
    )
    seed.download_dir.mkdir()
    os.link(source, seed.download_dir / source.name)
    leech = PbtsPeer(
        command="download",
        torrent=site.member_torrent(torrent, leecher, work / "pbts-leech.torrent"),
        workdir=work / "pbts-leech",
        extra=["--key", str(keys["leech"]), "--site", url, "--seed-ratio", "0"],
        token=leech_token,
    )
    try:
        seconds = timed(seed, leech)
        done = leech.wait_exit(timeout=60)
        time.sleep(2.5)  # a statistics flush or two (PBTS_FLUSH_SECONDS=1)
        seed.stop()
        final = seed.last("exit")
    finally:
        stop_all([leech, seed])
    pieces = done["piece_count"]
    figures = site.verification(seeder, pieces)
    return {
        "seconds": seconds,
        "pieces": pieces,
        "signed": done["receipts_signed"],
        "sign_rate": done["receipts_signed"] / max(done["sign_seconds"], 1e-9),
        "received": final["receipts_received"],
        "check_rate": final["receipts_checked"] / max(final["check_seconds"], 1e-9),
        "reported": final["receipts_reported"],
        "site": figures,
        "ledgers": site.ledgers(seeder, leecher),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--plain", action="store_true", help="also PBTS without receipts")
    args = parser.parse_args()
    port = free_port()
    env = site_env(port)
    os.environ.update(env)
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    os.environ.update(env)
    ensure_database()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                break
            except OSError as exc:
                if getattr(exc, "code", None) == 503:
                    break
                time.sleep(0.2)
        site = Site()
        with tempfile.TemporaryDirectory(prefix="pbts-peer-bench-") as tmp:
            work = Path(tmp)
            size = args.size_mib * 1024 * 1024
            source = work / "bench.bin"
            make_content(source, size)
            uploader, _ = site.member("uploader")
            torrent = site.torrent(uploader, make_torrent(source, args.piece_kib * 1024))
            print(f"torrent: {args.size_mib} MiB, {args.piece_kib} KiB pieces, site {url}")
            times: dict[str, list[float]] = {"lt": [], "pb": [], "plain": []}
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}: load average {os.getloadavg()[0]:.2f}")
                dirs = {k: work / f"{k}{round_no}" for k in times}
                for path in dirs.values():
                    path.mkdir()
                # Alternate the order, so neither client always runs on a warmer machine.
                order = ["lt", "pb"] if round_no % 2 else ["pb", "lt"]
                for kind in order:
                    if kind == "lt":
                        times["lt"].append(libtorrent_round(site, torrent, source, dirs["lt"]))
                    else:
                        pb = pbts_round(site, torrent, source, dirs["pb"], url)
                        times["pb"].append(pb["seconds"])
                    shutil.rmtree(dirs[kind])
                report(size, times["lt"][-1], pb)
                if args.plain:
                    times["plain"].append(plain_round(site, torrent, source, dirs["plain"]))
                    shutil.rmtree(dirs["plain"])
                    print(f"  PBTS->PBTS without receipts: {times['plain'][-1]:.2f} s")
            lt_m, pb_m = statistics.median(times["lt"]), statistics.median(times["pb"])
            print(
                f"median of {args.rounds}: libtorrent {lt_m:.2f} s, PBTS {pb_m:.2f} s,"
                f" ratio {pb_m / lt_m:.2f}; per round "
                + ", ".join(f"{p / lt:.2f}" for p, lt in zip(times["pb"], times["lt"], strict=True))
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


def report(size: int, lt: float, pb: dict) -> None:
    mib = size / (1024 * 1024)
    site = pb["site"]
    print(
        f"  libtorrent->libtorrent {lt:.2f} s ({mib / lt:.0f} MiB/s);"
        f" PBTS->PBTS {pb['seconds']:.2f} s ({mib / pb['seconds']:.0f} MiB/s);"
        f" ratio {pb['seconds'] / lt:.2f} (target <= 2)"
    )
    print(
        f"  receipts: {pb['signed']} signed for {pb['pieces']} pieces"
        f" ({pb['sign_rate']:.0f}/s signing, {pb['signed'] / pb['seconds']:.0f}/s over the"
        f" transfer); seeder kept {pb['received']} ({pb['check_rate']:.0f}/s checked),"
        f" reported {pb['reported']}"
    )
    rate = site["verified"] / site["span"] if site["span"] == site["span"] else float("nan")
    print(
        f"  site: {site['verified']} verified in {site['span']:.2f} s from the first report"
        f" ({rate:.0f}/s); refused {site['refused'] or 0}; verified (up, down) ledgers"
        f" seeder {pb['ledgers'][0]} leecher {pb['ledgers'][1]} (torrent {size} bytes)"
    )


if __name__ == "__main__":
    sys.exit(main())
