"""``manage.py createmember NAME [--staff] [--email E] [--password]``: a member who can log in.

Prints ``passkey=<32 hex>`` and ``token=<API token>``, one per line, so a script can read them.
The member's password comes from, in this order:

- ``--password``: asked at the terminal, twice (never echoed);
- the ``PBTS_MEMBER_PASSWORD`` environment variable (for scripts);
- otherwise none is set, and a third line ``set_password_url=<link>`` gives a one-time link
  where the member chooses one (valid for 3 days; void once used or after a login).

A password goes through the site's password validators. Nothing secret is logged.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from core.errors import DomainError
from tracker.models import Member
from tracker.services.members import (
    member_api_token,
    member_create,
    member_password_check,
    member_set_password_url,
)

PASSWORD_VARIABLE = "PBTS_MEMBER_PASSWORD"


class Command(BaseCommand):
    """Create a member through ``member_create``; print its passkey, API token and, when no
    password was given, a one-time set-password link."""

    help = (
        "Create a member; print its passkey and API token, and a one-time set-password link"
        f" unless --password or {PASSWORD_VARIABLE} gives the password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """NAME, ``--staff``, ``--email`` and ``--password``."""
        parser.add_argument("username", metavar="NAME", help="the new member's username")
        parser.add_argument("--staff", action="store_true", help="make the member staff")
        parser.add_argument("--email", default="", help="the member's email address")
        parser.add_argument(
            "--password",
            action="store_true",
            help="ask for the member's password at the terminal (twice)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate, create, print ``passkey=...``, ``token=...`` and maybe the link."""
        username: str = options["username"]
        email: str = options["email"].strip()
        try:
            Member._meta.get_field("username").clean(username, None)
            if email:
                validate_email(email)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        password = self._password(options["password"])
        try:
            if password is not None:
                member_password_check(username=username, email=email, password=password)
            member = member_create(
                username=username, email=email, password=password, is_staff=options["staff"]
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({username!r})") from exc
        self.stdout.write(f"passkey={member.passkey}")
        self.stdout.write(f"token={member_api_token(member)}")
        if password is None:
            self.stdout.write(f"set_password_url={member_set_password_url(member)}")

    def _password(self, prompt: bool) -> str | None:
        """The password from the terminal (``--password``), the environment, or None."""
        if prompt:
            first = getpass.getpass("Password: ")
            if first != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords differ.")
            return first
        return os.environ.get(PASSWORD_VARIABLE) or None
