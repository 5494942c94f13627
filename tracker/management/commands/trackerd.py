"""``manage.py trackerd``: run the asyncio HTTP and UDP tracker (see ``tracker.trackerd``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tracker.trackerd import DEFAULT_UDP_HOSTS


class Command(BaseCommand):
    help = (
        "Serve /announce and /scrape over HTTP, and BEP 15 over UDP, with the lean asyncio "
        "tracker (uvloop)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes sharing the port with SO_REUSEPORT (peers shared through Redis)",
        )
        parser.add_argument(
            "--udp-port",
            type=int,
            default=None,
            help="UDP tracker port (BEP 15); default PBTS_UDP_PORT (6969); 0 disables UDP",
        )
        parser.add_argument(
            "--udp-host",
            default=",".join(DEFAULT_UDP_HOSTS),
            help="comma-separated UDP addresses (default 0.0.0.0,:: — IPv4 and IPv6)",
        )
        parser.add_argument("--reuse-port", action="store_true", help=argparse_hidden())

    def handle(self, *args: Any, **opts: Any) -> None:
        workers = opts["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError("several workers share peers through Redis: set REDIS_URL")
        if opts["udp_port"] is None:
            opts["udp_port"] = settings.PBTS_UDP_PORT
        if not 0 <= opts["udp_port"] <= 65535:
            raise CommandError("--udp-port must be 0-65535")
        udp_hosts = tuple(h.strip() for h in opts["udp_host"].split(",") if h.strip())
        if opts["udp_port"] and not udp_hosts:
            raise CommandError("--udp-host needs at least one address")
        if workers > 1:
            self._supervise(opts)
            return
        self._serve(
            opts["host"],
            opts["port"],
            reuse_port=opts["reuse_port"],
            udp_port=opts["udp_port"],
            udp_hosts=udp_hosts,
        )

    def _serve(
        self, host: str, port: int, *, reuse_port: bool, udp_port: int, udp_hosts: tuple[str, ...]
    ) -> None:
        import uvloop

        from tracker import announce_runtime

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            udp = ""
            if udp_port:
                udp = " and " + ", ".join(
                    f"udp://{f'[{h}]' if ':' in h else h}:{udp_port}" for h in udp_hosts
                )
            self.stdout.write(
                f"trackerd listening on http://{host}:{port}/{udp} (pid {os.getpid()})"
            )
            self.stdout.flush()
            await announce_runtime.serve_trackerd(
                host,
                port,
                reuse_port=reuse_port,
                stop=stop,
                udp_port=udp_port,
                udp_hosts=udp_hosts,
            )

        uvloop.run(main())
        rt = announce_runtime.runtime()
        if rt.sync is not None:
            rt.sync.sync()  # push what this process still holds before it exits

    def _supervise(self, opts: dict[str, Any]) -> None:
        cmd = [sys.executable, sys.argv[0], "trackerd", "--host", opts["host"]]
        cmd += ["--port", str(opts["port"]), "--workers", "1", "--reuse-port"]
        cmd += ["--udp-port", str(opts["udp_port"]), "--udp-host", opts["udp_host"]]
        children = [subprocess.Popen(cmd) for _ in range(opts["workers"])]

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        codes = [child.wait() for child in children]
        if any(codes):
            raise CommandError(f"a worker exited with {codes}")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
