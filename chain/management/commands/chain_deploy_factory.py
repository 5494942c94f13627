"""``manage.py chain_deploy_factory [--replace] [--use ADDRESS]``: deploy a ReputationFactory
from the site's account and record its address and the chain id; ``--use`` records an existing
factory instead (a successor site must use its predecessor's factory)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chain.management.commands._common import dumps, run
from chain.selectors import chain_config
from chain.services.deploy import factory_adopt, factory_deploy


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--replace", action="store_true", help="deploy even if one exists")
        parser.add_argument("--use", default="", help="record this existing factory instead")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["use"]:
            address = run(lambda: factory_adopt(address=options["use"]))
        else:
            address = run(lambda: factory_deploy(replace=options["replace"]))
        self.stdout.write(dumps({"factory": address, "chain_id": chain_config().chain_id}))
