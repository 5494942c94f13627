"""``manage.py chain_devnet [--port 8545]`` (``make chain``): a local development chain.

Starts anvil on 127.0.0.1 with a persisted state file (``.local/chain/anvil-state.json``), so
the chain survives restarts; deploys the factory and this site's Reputation contract unless the
database already names a contract that exists on it; writes ``.local/chain/chain.env`` (the RPC
URL and anvil's dev account #0 key, as anvil printed it: a public development key, never for a
real chain) which ``make run``/``worker``/``beat`` pick up; then runs until Ctrl-C and stops
anvil by its PID.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.test import override_settings

from chain.devnet import BASE_DIR, Anvil
from chain.management.commands._common import dumps, run
from chain.selectors import chain_config, chain_overview
from chain.services.deploy import factory_deploy, reputation_create
from chain.services.transactions import chain_client

STATE_DIR = BASE_DIR / ".local" / "chain"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8545)
        parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
        parser.add_argument(
            "--no-wait", action="store_true", help="deploy, then stop anvil and exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        state_dir: Path = options["state_dir"]
        state_dir.mkdir(parents=True, exist_ok=True)
        node = Anvil(
            port=options["port"], state_file=state_dir / "anvil-state.json", state_interval=30
        )
        node.start()
        try:
            key = node.dev_private_key(0)
            env_file = state_dir / "chain.env"
            env_file.write_text(
                "# Written by `make chain`: the local anvil and its public dev account #0.\n"
                f"DEV_CHAIN_RPC_URL={node.url}\nDEV_CHAIN_PRIVATE_KEY={key}\n"
            )
            os.chmod(env_file, 0o600)
            with override_settings(PBTS_CHAIN_RPC_URL=node.url, PBTS_CHAIN_PRIVATE_KEY=key):
                self._deploy()
                self.stdout.write(dumps(chain_overview(live=True, staff=True)))
            self.stdout.write(
                f"anvil on {node.url} (pid {node.pid}); `make run` in another terminal uses it. "
                "Ctrl-C stops it (its state is kept)."
            )
            if not options["no_wait"]:
                self._wait(node)
        finally:
            node.stop()

    def _deploy(self) -> None:
        config = chain_config()
        client = chain_client()
        if config.reputation_address and client.code_at(config.reputation_address):
            self.stdout.write(f"contract {config.reputation_address} is on the chain already")
            return
        run(lambda: factory_deploy(replace=True))
        address = run(lambda: reputation_create(replace=True))
        self.stdout.write(f"deployed Reputation at {address}")

    @staticmethod
    def _wait(node: Anvil) -> None:
        stop = {"now": False}

        def handler(signum: int, frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, handler)
        try:
            while not stop["now"] and node.pid is not None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
