"""``manage.py chain_push [--batches N]``: send queued migrations, then push members whose
verified totals changed, now (what the Celery beat task does); prints the batches as JSON."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chain.management.commands._common import dumps, run
from chain.services.migration import migrations_send
from chain.services.push import members_push


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batches", type=int, default=10, help="transactions at most")

    def handle(self, *args: Any, **options: Any) -> None:
        migrations = run(migrations_send)
        result = run(lambda: members_push(max_batches=max(1, options["batches"])))
        document = result.as_dict()
        document["migrations"] = [{"id": m.pk, "status": m.status} for m in migrations]
        self.stdout.write(dumps(document))
