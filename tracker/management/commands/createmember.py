"""``manage.py createmember NAME [--staff] [--email E]``: a member for scripts and tests.

The member has no usable password (tracker and API only). Prints exactly two lines,
``passkey=<32 hex>`` and ``token=<API token>``, so a script can read them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from tracker.errors import DomainError
from tracker.models import Member
from tracker.services.members import member_api_token, member_create


class Command(BaseCommand):
    """Create a member through ``member_create`` and print its passkey and API token."""

    help = "Create a member without a password; print its passkey and API token."

    def add_arguments(self, parser: CommandParser) -> None:
        """NAME, ``--staff`` and ``--email``."""
        parser.add_argument("username", metavar="NAME", help="the new member's username")
        parser.add_argument("--staff", action="store_true", help="make the member staff")
        parser.add_argument("--email", default="", help="the member's email address")

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate, create, print ``passkey=...`` and ``token=...``."""
        username: str = options["username"]
        email: str = options["email"].strip()
        try:
            Member._meta.get_field("username").clean(username, None)
            if email:
                validate_email(email)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        try:
            member = member_create(username=username, email=email, is_staff=options["staff"])
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({username!r})") from exc
        self.stdout.write(f"passkey={member.passkey}")
        self.stdout.write(f"token={member_api_token(member)}")
