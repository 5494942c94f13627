"""Announce paths and wrk: what the HTTP load replays, how wrk runs, and the replies sampled
one by one around each run (decoded, so that refusals are counted)."""

from __future__ import annotations

import errno
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib.data import BenchData
from bench.lib.env import BLACKLISTED_PORTS, PEER_ID_PREFIX, SEEDER_SHARE

THREADS, CONNECTIONS = 2, 50
MODES = ("keep-alive", "close")

# wrk script: each thread keeps every n-th line of the path file (its share), pre-formats the
# requests, and sends them in order; a thread that runs out starts again (counted as a wrap:
# for a PBTS target a repeated peer would be refused as "Announce too soon").
#
# Start barrier: wrk runs each thread's ``init`` in its main thread just before starting that
# thread, and starts its clock after the last one, so with large path files thread 0 would
# send (and count) requests while thread 1 still loads its share. Here every thread's first
# ``request`` blocks opening its own FIFO (``<gate>/go-<id>``) until the driver opens it for
# writing, which the driver does once the last thread has reached that point (all shares
# loaded): every thread starts together, within microseconds of each other and a few
# milliseconds after wrk's clock. With ``once``, a thread that has had an answer to each of its
# paths writes ``<gate>/done-<id>`` (the prefill: the driver then stops wrk with SIGINT).
WRK_LUA = r"""
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads, mode = args[1], tonumber(args[2]), args[3]
  gate, once = args[4], args[5] == "once"
  local headers = {}
  if mode == "close" then headers["Connection"] = "close" end
  reqs, n, pos, wraps, answered, started, verified = {}, 0, 0, 0, 0, false, false
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == id then
      n = n + 1
      reqs[n] = wrk.format("GET", line, headers)
    end
    k = k + 1
  end
end

function request()
  if not verified then
    -- wrk calls thread 0's request() once from its main thread, before starting any thread,
    -- to check the request (and discards it): that call must neither block nor consume.
    verified = true
    if id == 0 then return reqs[1] end
  end
  if not started then
    local fifo = io.open(gate .. "/go-" .. id, "r")
    if fifo then fifo:close() end
    started = true
  end
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return reqs[pos]
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("wraps") or 0) end
  io.write(string.format("BENCH_WRAPS %d\n", total))
end
"""

# The prefill's script: the replay script, plus a ``response`` hook that writes the thread's
# done file (a ``response`` function makes wrk parse every reply, so the timed runs do without).
WRK_PREFILL_LUA = (
    WRK_LUA
    + r"""
function response(status, headers, body)
  if once then
    answered = answered + 1
    if answered == n then
      local f = io.open(gate .. "/done-" .. id, "w")
      if f then f:close() end
    end
  end
end
"""
)


# --- announce paths ---------------------------------------------------------------------

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
PCT = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


def pct(data: bytes) -> str:
    """Percent-encode bytes as a BitTorrent client does (unreserved characters kept)."""
    return "".join([PCT[b] for b in data])


class PathFactory:
    """Makes announce paths for fresh peers. Peer ``i`` of a target announces torrent
    ``i % T`` with member ``(i // T + 7 t) % M``: no (member, torrent) pair repeats within
    T x M = 20,000,000 peers, and consecutive peers spread over every member."""

    def __init__(self, data: BenchData) -> None:
        self.hashes = [pct(bytes.fromhex(h)) for h in data.info_hashes]
        self.passkeys = data.passkeys
        self._next: dict[str, int] = {}

    def take(
        self,
        target: str,
        count: int,
        *,
        passkey_in_path: bool,
        numwant: int = 50,
        passkey_first: bool = False,
    ) -> list[str]:
        """``count`` announce paths of peers never used before by ``target``, shuffled; each
        asks for ``numwant`` peers. ``count`` a multiple of T gives every torrent as many.
        With the passkey in the path, PBTS's layout ``/announce/<passkey>?``, or with
        ``passkey_first`` Gazelle's (Ocelot's) ``/<passkey>/announce?``."""
        start = self._next.get(target, 0)
        self._next[target] = start + count
        rng = random.Random(f"{target}:{start}")
        torrents, members = len(self.hashes), len(self.passkeys)
        paths = []
        for i in range(start, start + count):
            t = i % torrents
            passkey = self.passkeys[(i // torrents + 7 * t) % members]
            head = f"/{passkey}/announce?" if passkey_first else f"/announce/{passkey}?"
            query = self._query(t, rng, numwant)
            paths.append((head if passkey_in_path else "/announce?") + query)
        rng.shuffle(paths)
        return paths

    def _query(self, torrent: int, rng: random.Random, numwant: int) -> str:
        port = rng.randrange(1025, 65536)
        while port in BLACKLISTED_PORTS:
            port = rng.randrange(1025, 65536)
        left = 0 if rng.random() < SEEDER_SHARE else rng.randrange(1, 1 << 33)
        return (
            f"info_hash={self.hashes[torrent]}&peer_id={pct(PEER_ID_PREFIX + rng.randbytes(12))}"
            f"&port={port}&uploaded=0&downloaded=0&left={left}&corrupt=0"
            f"&key={rng.getrandbits(32):08X}&event=started&numwant={numwant}&compact=1"
            "&no_peer_id=1&supportcrypto=1&redundant=0"
        )


# --- wrk and samples ----------------------------------------------------------------------


@dataclass
class SampleResult:
    """Replies of announces sent one by one with http.client and decoded with fastbencode."""

    sent: int = 0
    ok: int = 0
    peers: int = 0  # peers in the ok replies (compact: 6 bytes each)
    refusals: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def add(self, other: SampleResult) -> None:
        """Merge another sample into this one."""
        self.sent += other.sent
        self.ok += other.ok
        self.peers += other.peers
        self.refusals.update(other.refusals)
        self.errors.update(other.errors)


def _classify(status: int, body: bytes, result: SampleResult) -> None:
    from fastbencode import bdecode

    if status != 200:
        result.errors[f"HTTP {status}"] += 1
        return
    try:
        reply = bdecode(body)
    except Exception:
        result.errors["not bencoded"] += 1
        return
    if not isinstance(reply, dict):
        result.errors["not a dict"] += 1
    elif b"failure reason" in reply:
        result.refusals[reply[b"failure reason"].decode(errors="replace")] += 1
    elif isinstance(reply.get(b"peers"), bytes) and b"interval" in reply:
        result.ok += 1
        result.peers += len(reply[b"peers"]) // 6
    else:
        result.errors["reply without peers/interval"] += 1


def sample_replies(port: int, paths: list[str]) -> SampleResult:
    """Send ``paths`` one at a time, each on its own connection (``Connection: close``, 5 s
    timeout), and classify every reply."""
    result = SampleResult()
    for path in paths:
        result.sent += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            _classify(response.status, response.read(), result)
        except (OSError, http.client.HTTPException) as exc:
            result.errors[type(exc).__name__] += 1
        finally:
            conn.close()
    return result


@dataclass
class WrkResult:
    """What one wrk run reports. Latencies are milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    read_errors: int  # the server closed a connection wrk meant to reuse
    other_errors: int  # connect, write and timeout errors
    non_2xx: int
    wraps: int
    output: str

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's ``--latency`` report (and the script's BENCH_WRAPS line).

    Raises:
        ValueError: the output has no request count (wrk failed).
    """
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    if total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    wraps = re.search(r"BENCH_WRAPS (\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2) + total.group(3)) / 1e3,
        p50_ms=_ms(percentile["50"]) if "50" in percentile else float("nan"),
        p99_ms=_ms(percentile["99"]) if "99" in percentile else float("nan"),
        read_errors=int(sock.group(2)) if sock else 0,
        other_errors=sum(int(sock.group(i)) for i in (1, 3, 4)) if sock else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        wraps=int(wraps.group(1)) if wraps else 0,
        output=output,
    )


GATE_TIMEOUT = 120.0  # seconds wrk's threads have to load their shares and connect


def _open_gate(gate: Path, threads: int, proc: subprocess.Popen) -> bool:
    """Release wrk's threads together: wait (bounded) until the last thread blocks on its FIFO
    (every share is loaded by then), then open every thread's FIFO for writing, the last one
    first. Returns whether all were released (``False``: wrk exited or timed out first)."""
    fds: list[int] = []
    deadline = time.monotonic() + GATE_TIMEOUT
    try:
        for i in [threads - 1, *range(threads - 1)]:
            while True:
                try:
                    fds.append(os.open(gate / f"go-{i}", os.O_WRONLY | os.O_NONBLOCK))
                    break
                except OSError as exc:  # ENXIO: no reader yet
                    if exc.errno != errno.ENXIO:
                        raise
                if proc.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.0005)
        return True
    finally:
        for fd in fds:
            os.close(fd)


def run_wrk(
    port: int,
    script: Path,
    paths_file: Path,
    mode: str,
    seconds: float,
    *,
    on_start: Callable[[], None] | None = None,
    once: bool = False,
) -> WrkResult:
    """wrk with 2 threads, 50 connections, ``--latency``, replaying ``paths_file``; its threads
    start together (the script's FIFO barrier), and ``on_start`` is called at that moment
    (read CPU counters there). With ``once`` (the prefill script), wrk is stopped (SIGINT) as
    soon as every path has been answered, or after ``seconds``.

    Raises:
        RuntimeError: wrk failed.
    """
    gate = Path(tempfile.mkdtemp(prefix="wrk-gate-", dir=paths_file.parent))
    for i in range(THREADS):
        os.mkfifo(gate / f"go-{i}")
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s"]
    cmd += ["--latency", "-s", str(script), f"http://127.0.0.1:{port}/"]
    cmd += ["--", str(paths_file), str(THREADS), mode, str(gate), "once" if once else "replay"]
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        try:
            released = _open_gate(gate, THREADS, proc)
            if on_start is not None:  # (also when not released: wrk's threads never asked)
                on_start()
            if released and once:
                while proc.poll() is None and not all(
                    (gate / f"done-{i}").exists() for i in range(THREADS)
                ):
                    time.sleep(0.05)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            proc.wait(timeout=seconds + GATE_TIMEOUT + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            shutil.rmtree(gate, ignore_errors=True)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr or stdout}")
    if not released:  # no thread ever had a connection to send on: the counts say so
        print(f"  WARNING: wrk's threads never reached the start barrier {stderr.strip()}")
    return parse_wrk(stdout)
