"""``manage.py chain_status``: the chain set-up as JSON (RPC URL without credentials, chain id,
account address, factory and reputation addresses, health); "not configured" when unset."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chain.management.commands._common import dumps
from chain.selectors import NOT_CONFIGURED, chain_overview


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        data = chain_overview(live=True, staff=True)
        for key in ("chain_id", "factory", "reputation"):
            if data.get(key) is None:
                data[key] = NOT_CONFIGURED
        self.stdout.write(dumps(data))
