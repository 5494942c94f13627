"""``manage.py chain_create_reputation [--referrer ADDRESS] [--attestation HEX] [--replace]``:
create this site's Reputation contract through the factory, optionally as the successor of
another site's contract (whose owner must then run ``chain_approve_successor`` on theirs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.management.commands._common import dumps, run
from chain.services.deploy import reputation_create


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--referrer", default="", help="the predecessor's Reputation address")
        parser.add_argument("--attestation", default="", help="attestation bytes, hex")
        parser.add_argument("--replace", action="store_true", help="create even if one exists")

    def handle(self, *args: Any, **options: Any) -> None:
        text = options["attestation"].removeprefix("0x")
        try:
            attestation = bytes.fromhex(text)
        except ValueError:
            raise CommandError("--attestation must be hex") from None
        address = run(
            lambda: reputation_create(
                referrer=options["referrer"], attestation=attestation, replace=options["replace"]
            )
        )
        self.stdout.write(dumps({"reputation": address, "referrer": options["referrer"] or None}))
