"""Huge torrents: upload checks and downloads, before and after issue 14's caps and splicing.

    .venv/bin/python bench/metainfo.py

Torrents (all under the 10 MiB upload cap):
  330k files       -- 330,000 files with short paths (the issue's 38 s upload);
  1M-deep list     -- a list nested 1,000,000 deep under an ``info`` key (accepted before, 5 s
                      per download);
  10k files        -- 10,000 files, the most PBTS_MAX_TORRENT_FILES accepts by default;
  token flood      -- ``info`` holding one list of ~5.2 million empty lists (depth 4): the
                      most values 10 MiB can hold (the scan stops at 1,010,000).

Columns (wall milliseconds, best of a few runs):
  scan       -- ``check_structure`` on the raw upload (before decoding), default limits;
  parse      -- ``parse`` with the default caps (depth 100, 10,000 files): refused or accepted;
  parse old  -- ``parse`` + ``rewrite`` with the caps lifted (what uploads did before);
  download old -- the decode-and-re-encode download (bytes stored with a ``comment`` key, as
                  before, which ``encode_for_member`` cannot splice);
  download   -- the spliced download of the bytes as ``rewrite`` stores them now.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastbencode import Bencached, bdecode, bencode  # noqa: E402

from bench.lib.machine import cpu_model  # noqa: E402
from tracker import metainfo  # noqa: E402

MAX_BYTES = 10 * 1024 * 1024
UNLIMITED = {"max_files": 10**9, "max_depth": 10**8}
ANNOUNCE = "https://tracker.example.org/announce/0123456789abcdef0123456789abcdef"
UDP = "udp://tracker.example.org:6969/announce/0123456789abcdef0123456789abcdef"
COMMENT = "https://tracker.example.org/torrents/12345/"


def torrent(info_extra: dict[bytes, object], files: int = 0) -> bytes:
    """A valid v1 torrent: ``files`` one-byte files (or one 100 kB file), plus extra keys."""
    info: dict[bytes, object] = {b"name": b"bench", b"piece length": 16384}
    if files:
        info[b"files"] = [
            {b"length": 1, b"path": [b"%x" % (i >> 12), b"%x" % (i & 0xFFF)]} for i in range(files)
        ]
        total = files
    else:
        info[b"length"] = total = 100_000
    info[b"pieces"] = os.urandom(20 * math.ceil(total / 16384))
    info.update(info_extra)
    return bencode({b"created by": b"bench", b"creation date": 1_700_000_000, b"info": info})


def cases() -> dict[str, bytes]:
    flood = (MAX_BYTES - 1000) // 2 - 2
    return {
        "330k files": torrent({}, files=330_000),
        "1M-deep list": torrent({b"zz": Bencached(b"l" * 1_000_000 + b"e" * 1_000_000)}),
        "10k files": torrent({}, files=10_000),
        "token flood": torrent({b"zz": Bencached(b"l" + b"le" * flood + b"e")}),
    }


def best(func: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def scan(data: bytes) -> None:
    with contextlib.suppress(metainfo.MetainfoError):
        metainfo.check_structure(
            data,
            max_depth=metainfo.DEFAULT_MAX_DEPTH,
            max_tokens=metainfo.TOKENS_PER_FILE * metainfo.DEFAULT_MAX_FILES + metainfo.TOKENS_BASE,
        )


def outcome(data: bytes) -> str:
    try:
        metainfo.parse(data, max_bytes=MAX_BYTES)
    except metainfo.MetainfoError as exc:
        return f"refused: {exc}"
    return "accepted"


def main() -> None:
    model = cpu_model()
    print(
        f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {model}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"fastbencode {metadata.version('fastbencode')}; load {os.getloadavg()}"
    )
    print(
        "| torrent | bytes | scan ms | parse ms | parse old ms | download old ms "
        "| download ms | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for name, data in cases().items():
        scan_s = best(lambda data=data: scan(data))
        parse_ms = best(lambda data=data: outcome(data))
        notes.append(f"{name}: {outcome(data)}")
        meta = metainfo.rewrite(
            metainfo.parse(data, max_bytes=MAX_BYTES, **UNLIMITED), source="PBTS"
        )
        parse_old = best(
            lambda data=data: metainfo.rewrite(
                metainfo.parse(data, max_bytes=MAX_BYTES, **UNLIMITED), source="PBTS"
            ),
            runs=1,
        )
        stored = meta.to_bytes()
        old_stored = bencode({**bdecode(stored), b"comment": b"stored as before"})

        def download(raw: bytes) -> bytes:
            return metainfo.encode_for_member(
                raw, announce_url=ANNOUNCE, comment=COMMENT, other_urls=(UDP,)
            )

        assert not metainfo._spliceable(old_stored) and metainfo._spliceable(stored)
        assert metainfo.info_hash_of(download(stored)) == meta.info_hash
        old = best(lambda raw=old_stored: download(raw))
        new = best(lambda raw=stored: download(raw), runs=20)
        print(
            f"| {name} | {len(data):,} | {scan_s * 1000:,.1f} | {parse_ms * 1000:,.1f} "
            f"| {parse_old * 1000:,.0f} | {old * 1000:,.0f} | {new * 1000:,.2f} "
            f"| {old / new:,.0f}x |",
            flush=True,
        )
    for note in notes:
        print(f"# {note}")


if __name__ == "__main__":
    main()
