"""``manage.py chain_approve_successor ADDRESS [--revoke]``: endorse another site's Reputation
contract as this one's successor, so its owner may import our members' records (each on the
member's own signed request)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chain.management.commands._common import dumps, run
from chain.services.deploy import successor_approve


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")
        parser.add_argument("--revoke", action="store_true", help="withdraw the endorsement")

    def handle(self, *args: Any, **options: Any) -> None:
        approved = not options["revoke"]
        run(lambda: successor_approve(successor=options["address"], approved=approved))
        self.stdout.write(dumps({"successor": options["address"], "approved": approved}))
