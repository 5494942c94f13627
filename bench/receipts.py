"""Receipt verification speed: receipts verified per second per core, blst and py_ecc backends.

    .venv/bin/python bench/receipts.py [--no-py-ecc]

Realistic receipts (receipts.format, distinct pieces, one uploader) in two shapes:
  grouped   -- signed by 4 downloaders (a report holds receipts from a few peers): one Miller
               loop per signer, the messages of a signer combined by multi-scalar multiplication;
  distinct  -- every receipt signed by a different downloader: one Miller loop per receipt;
               "distinct-warm": the same with the public keys already decoded (a long-running
               worker keeps the decoded keys of registered members in an LRU cache).
Batches of 1, 64 and 1024 go through ``batch_verify`` (randomized, 64-bit scalars); "verify"
is one plain ``verify`` per receipt. Decoded public keys are forgotten before every timed run
(cold cache). py_ecc (~2 verifications/s) runs only batches of 1 and 64, once each.

"per core": CPU seconds of this process (time.process_time), which stay meaningful when other
work shares the machine; wall time is printed too. Runs in about a minute and a half.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# receipts package: put the repository root in front.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lib.machine import cpu_model  # noqa: E402
from receipts import bls  # noqa: E402
from receipts.bls import SignedItem  # noqa: E402
from receipts.bls.blst_backend import BlstBackend  # noqa: E402
from receipts.format import Receipt, realm_id, time_bucket  # noqa: E402

GROUPED_SIGNERS = 4


@dataclass
class Row:
    backend: str
    shape: str
    batch: int
    runs: int
    cpu: float  # CPU seconds per receipt
    wall: float  # wall seconds per receipt

    @property
    def per_second(self) -> float:
        return 1.0 / self.cpu


def make_items(count: int, signers: int, seed: int) -> list[SignedItem]:
    """``count`` signed receipts of one uploader, downloaders cycling over ``signers`` keys."""
    realm = realm_id("PBTS bench", "https://tracker.example.org")
    _, uploader = bls.keygen(b"U" * 31 + bytes([seed]))
    keys = [bls.keygen(seed.to_bytes(2, "big") + i.to_bytes(4, "big") * 8) for i in range(signers)]
    bucket = time_bucket(time.time())
    items = []
    for i in range(count):
        sk, pk = keys[i % signers]
        receipt = Receipt(
            realm=realm,
            info_hash=bytes([seed % 256]) * 20,
            piece_index=i,
            piece_length=262144 if i + 1 < count else 12345,
            uploader_pk=uploader,
            downloader_pk=pk,
            time_bucket=bucket,
        )
        data = receipt.to_bytes()
        items.append(SignedItem((pk,), (data,), bls.sign(sk, data)))
    return items


def measure(check: Callable[[], bool], runs: int, *, cold: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per run of ``check``; each run must return True. ``cold``:
    forget decoded public keys before each run; otherwise one untimed run warms them."""
    cpu = wall = 0.0
    if not cold:
        check()
    for _ in range(runs):
        if cold:
            BlstBackend.clear_caches()
        c0, w0 = time.process_time(), time.perf_counter()
        ok = check()
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        if not ok:
            raise SystemExit("verification failed: the benchmark's receipts must be valid")
    return cpu / runs, wall / runs


def bench(name: str, shape: str, items: list[SignedItem], runs: int) -> Row:
    """Time one row: plain verify of items[0], or batch_verify of all of ``items``."""
    backend = bls.get_backend(name)
    item = items[0]

    def check() -> bool:
        if shape == "verify":
            return backend.verify(item.pks[0], item.msgs[0], item.sig)
        return backend.batch_verify(items)

    cpu, wall = measure(check, runs, cold=not shape.endswith("warm"))
    return Row(name, shape, len(items), runs, cpu / len(items), wall / len(items))


def plan(with_py_ecc: bool) -> list[tuple[str, str, int, int]]:
    """(backend, shape, batch size, runs)."""
    rows = [("blst", "verify", 1, 200)]
    for batch, runs in ((1, 200), (64, 20), (1024, 3)):
        rows += [("blst", "grouped", batch, runs), ("blst", "distinct", batch, runs)]
    rows += [("blst", "distinct-warm", 1024, 3)]
    if with_py_ecc:
        rows += [("py_ecc", "verify", 1, 2), ("py_ecc", "grouped", 64, 1)]
        rows += [("py_ecc", "distinct", 64, 1)]
    return rows


def machine() -> str:
    model = cpu_model()
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyblst {metadata.version('pyblst')}, py_ecc {metadata.version('py_ecc')}"
    )


def print_table(rows: list[Row]) -> None:
    print("| backend | shape | batch | runs | receipts/s per core (CPU) | ms/receipt CPU | wall |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.backend} | {r.shape} | {r.batch} | {r.runs} | {r.per_second:,.1f} | "
            f"{r.cpu * 1e3:.3f} | {r.wall * 1e3:.3f} |"
        )
    by_key = {(r.backend, r.shape, r.batch): r for r in rows}
    for shape, batch in (("verify", 1), ("grouped", 64), ("distinct", 64)):
        fast, ref = by_key.get(("blst", shape, batch)), by_key.get(("py_ecc", shape, batch))
        if fast and ref:
            print(f"blst/py_ecc speed ratio, {shape} batch {batch}: {ref.cpu / fast.cpu:,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-py-ecc", action="store_true", help="skip the slow reference")
    args = parser.parse_args()
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print(f"# load average before: {os.getloadavg()}")
    pools = {
        "grouped": make_items(1024, GROUPED_SIGNERS, seed=1),
        "distinct": make_items(1024, 1024, seed=2),
    }
    pools["verify"] = pools["grouped"]
    pools["distinct-warm"] = pools["distinct"]
    rows = []
    for name, shape, batch, runs in plan(not args.no_py_ecc):
        rows.append(bench(name, shape, pools[shape][:batch], runs))
        print(f"#   done: {name} {shape} {batch}", flush=True)
    print(f"# load average after: {os.getloadavg()}")
    print_table(rows)


if __name__ == "__main__":
    main()
