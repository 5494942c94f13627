"""A private network namespace for real-client tests whose client ignores loopback peers.

Transmission drops every peer address in 127.0.0.0/8 that a tracker hands it (libtransmission
treats them as "martian"), so a swarm on 127.0.0.1 cannot work for it. :func:`network_namespace`
gives such a swarm addresses of its own, inside this machine only:

- a namespace ``pbts-<8 hex>`` (``ip netns add``) whose loopback is up;
- a veth pair ``pbts<6 hex>h`` (host side, ``10.A.B.1/30``) and ``pbts<6 hex>n`` (moved into
  the namespace, ``10.A.B.2/30``), ``A`` in 200..249 and ``B`` in 0..255 chosen at random among
  subnets that no address or route of the host overlaps.

The tracker listens on the host-side address (the test process binds ``10.A.B.1``), the clients
run inside the namespace (``ip netns exec``, :attr:`Netns.exec_prefix`) on ``10.A.B.2``. There is
no route out of the namespace but the /30 itself, no forwarding and no NAT: packets only travel
between the two ends of the pair.

Teardown (always, also when the test fails): processes still in the namespace, which can only be
the test's own, are killed by PID (``ip netns pids``); the veth pair is deleted (deleting one end
removes both) and so is the namespace. Every ``ip`` call has a timeout. Creating a namespace
needs ``CAP_SYS_ADMIN`` and ``CAP_NET_ADMIN`` (root on the test machines);
:class:`NetnsUnavailable` says precisely which step the kernel refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

IP = "ip"
IP_TIMEOUT = 15.0


class NetnsUnavailable(RuntimeError):
    """A namespace or veth pair could not be made; the message names the failing command and
    what the kernel said (for example ``Operation not permitted`` without root)."""


@dataclass(frozen=True, slots=True)
class Netns:
    """A namespace made by :func:`network_namespace`.

    Attributes:
        name: the namespace (``pbts-<hex>``).
        host_addr: IPv4 address of the host-side veth end (where the tracker listens).
        ns_addr: IPv4 address of the namespace side (where the clients listen).
        host_if: host-side interface name; ns_if: its peer inside the namespace.
    """

    name: str
    host_addr: str
    ns_addr: str
    host_if: str
    ns_if: str

    @property
    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside the namespace (``ip netns exec NAME``);
        ``ip`` execs the command in place, so its PID is the client's own."""
        return [IP, "netns", "exec", self.name]

    def pids(self) -> list[int]:
        """PIDs of the processes inside the namespace now (``ip netns pids``)."""
        out = _ip("netns", "pids", self.name, check=False)
        return [int(p) for p in out.split() if p.isdigit()]


def _ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS`` (bounded by :data:`IP_TIMEOUT`); returns stdout.

    Raises:
        NetnsUnavailable: the command failed and ``check`` is true.
    """
    done = subprocess.run(
        [IP, *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
    )
    if check and done.returncode != 0:
        raise NetnsUnavailable(
            f"`ip {' '.join(args)}` failed (exit {done.returncode}, uid {os.geteuid()}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address in or a route to."""
    nets = []
    for line in _ip("-4", "-o", "addr", "show").splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.ip_interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", "table", "all").splitlines():
        fields = line.split()
        if not fields:
            continue
        dest = fields[1] if fields[0] in {"local", "broadcast", "unicast"} else fields[0]
        if dest == "default":
            continue
        with contextlib.suppress(ValueError):
            nets.append(ipaddress.ip_network(dest, strict=False))
    return nets


def pick_subnet(attempts: int = 200) -> ipaddress.IPv4Network:
    """A random ``10.A.B.0/30`` (A in 200..249) that overlaps no host address or route.

    Raises:
        NetnsUnavailable: none found in ``attempts`` tries.
    """
    used = _used_networks()
    rng = random.SystemRandom()
    for _ in range(attempts):
        net = ipaddress.ip_network(f"10.{rng.randint(200, 249)}.{rng.randint(0, 255)}.0/30")
        if not any(net.overlaps(other) for other in used):
            return net
    raise NetnsUnavailable(f"no free 10.x.y.0/30 subnet found in {attempts} tries")


@contextlib.contextmanager
def network_namespace() -> Iterator[Netns]:
    """Make a namespace joined to the host by a veth pair; remove everything at the end.

    Yields:
        the :class:`Netns` (its loopback and both veth ends are up).

    Raises:
        NetnsUnavailable: a step was refused (the message says which and why); whatever was
            made before it is removed first.
    """
    tag = secrets.token_hex(4)
    net = pick_subnet()
    host_addr, ns_addr = (str(h) for h in net.hosts())
    ns = Netns(
        name=f"pbts-{tag}",
        host_addr=host_addr,
        ns_addr=ns_addr,
        host_if=f"pbts{tag[:6]}h",
        ns_if=f"pbts{tag[:6]}n",
    )
    made_ns = made_link = False
    try:
        _ip("netns", "add", ns.name)
        made_ns = True
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        made_link = True
        _ip("link", "set", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{host_addr}/{net.prefixlen}", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        inside = ("-n", ns.name)
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "addr", "add", f"{ns_addr}/{net.prefixlen}", "dev", ns.ns_if)
        _ip(*inside, "link", "set", ns.ns_if, "up")
        yield ns
    finally:
        errors = []
        if made_ns:
            _kill_inside(ns)
        if made_link:
            with contextlib.suppress(NetnsUnavailable):
                # Gone already if the namespace went first; otherwise this removes both ends.
                if ns.host_if in _ip("-o", "link", "show"):
                    _ip("link", "del", ns.host_if)
        if made_ns:
            try:
                _ip("netns", "del", ns.name)
            except NetnsUnavailable as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def _kill_inside(ns: Netns, timeout: float = 10.0) -> None:
    """SIGKILL whatever still runs inside ``ns`` (only the test's own clients can be there:
    nothing else is ever started in a namespace made for the test) and wait until none is
    left, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = ns.pids()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
