"""``manage.py seed``: load categories, the client whitelist and the rules/FAQ pages.

Idempotent: rows are matched by natural key (category slug or name, client prefix, page slug)
and only missing ones are created, so staff edits survive a re-run. ``--overwrite-pages``
rewrites the rules and FAQ from the current settings (``MIN_RATIO``, the grace allowance).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Q

from tracker import seed_data
from tracker.models import Category, ClientPrefix, SitePage


class Command(BaseCommand):
    """Create the seed rows that are missing; report what was created."""

    help = "Load categories, the client whitelist and the rules/FAQ pages (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--overwrite-pages``."""
        parser.add_argument(
            "--overwrite-pages",
            action="store_true",
            help="rewrite the seeded pages from the current settings, replacing staff edits",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        """Seed everything in one transaction."""
        categories = self._categories()
        clients = self._clients()
        pages = self._pages(overwrite=options["overwrite_pages"])
        self.stdout.write(
            f"Seeded: {categories} categor{'y' if categories == 1 else 'ies'}, "
            f"{clients} whitelisted client(s), {pages} page(s) created or updated."
        )

    def _categories(self) -> int:
        created = 0
        for slug, name, position in seed_data.CATEGORIES:
            if Category.objects.filter(Q(slug=slug) | Q(name__iexact=name)).exists():
                continue
            Category.objects.create(slug=slug, name=name, position=position)
            created += 1
        if not Category.objects.filter(slug="other").exists():
            self.stderr.write("Warning: no category with the slug 'other' (its name is taken).")
        return created

    def _clients(self) -> int:
        created = 0
        for prefix, name in seed_data.CLIENT_PREFIXES:
            _, was_created = ClientPrefix.objects.get_or_create(
                prefix=prefix, defaults={"name": name, "is_allowed": True}
            )
            created += was_created
        return created

    def _pages(self, *, overwrite: bool) -> int:
        context = seed_data.page_context(
            min_ratio=settings.MIN_RATIO,
            grace_bytes=settings.PBTS_RATIO_GRACE_BYTES,
            base_url=settings.PBTS_BASE_URL,
        )
        written = 0
        for page in seed_data.PAGES:
            values = {"title": page.title, "body": seed_data.render_page(page, context)}
            if overwrite:
                row, was_created = SitePage.objects.get_or_create(slug=page.slug, defaults=values)
                if not was_created and (row.title, row.body) != (values["title"], values["body"]):
                    row.title, row.body = values["title"], values["body"]
                    row.save(update_fields=["title", "body", "updated_at"])
                    was_created = True
            else:
                _, was_created = SitePage.objects.get_or_create(slug=page.slug, defaults=values)
            written += was_created
        return written
