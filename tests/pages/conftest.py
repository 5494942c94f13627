"""Fixtures of the browser page suite: a live server on 127.0.0.1, Debian's Chromium driven by
Playwright (nothing downloaded at run time), the site's data with names as long as the forms
accept, and logged-in :class:`~tests.pages.browser.Visitor` pages.

Playwright's sync API runs an asyncio loop in the test thread, so Django refuses ORM calls
there unless ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set: the ``browser`` fixture sets it for as long
as Playwright runs (this module's tests only) and restores it afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.pages.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LONG_EMAIL,
    NAME_140,
    NAME_255,
    PASSWORD,
    USERNAME_150,
    WIDE,
    SiteData,
    Visitor,
)
from tracker.models import Member
from tracker.services.members import invite_create, member_create, owner_ensure
from tracker.services.torrents import torrent_set_promotion
from tracker.tests.torrents import upload_torrent


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """pytest-django's live server, bound to 127.0.0.1 on a free port (not ``localhost``)."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, with ORM calls allowed while Playwright's loop runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()


@pytest.fixture
def site(live_server: LiveServer, browser: Browser) -> SiteData:
    """Seed data, the owner, a member with a 150-character username, torrents named with 255
    and 140 characters (one multi-file, with long paths) and an invite to a 254-character
    address. ``browser`` comes first so that the ORM calls here are allowed."""
    call_command("seed", stdout=io.StringIO())
    owner, _ = owner_ensure(username="owner", email="owner@example.org", password=PASSWORD)
    member = member_create(
        username=USERNAME_150, email="member@example.org", password=PASSWORD, invited_by=owner
    )
    Member.objects.filter(pk=member.pk).update(invites_left=2)
    long_torrent = upload_torrent(
        owner,
        name=NAME_255,
        description=f"A long word: {NAME_255}\n\n* one\n* two",
    )
    assert len(long_torrent.name) == 255 and " " not in long_torrent.name
    torrent_set_promotion(
        torrent=long_torrent, actor=owner, is_freeleech=True, is_double_upload=True
    )
    multi_file_torrent = upload_torrent(
        member,
        name=NAME_140,
        files=[(f"{NAME_140}/{NAME_255}.mkv", 700_000), (f"{NAME_140}/Sample/{NAME_255}", 9_000)],
    )
    for index in range(3):
        upload_torrent(owner, name=f"Short.Name.{index}", size=50_000 * (index + 1))
    invite_create(inviter=member, email=LONG_EMAIL)
    invite_create(inviter=owner)
    return SiteData(
        url=live_server.url,
        owner=owner,
        member=member,
        long_torrent=long_torrent,
        multi_file_torrent=multi_file_torrent,
    )


@pytest.fixture
def visit(browser: Browser, site: SiteData) -> Iterator[Any]:
    """``visit(role)`` returns a :class:`Visitor` logged in as ``owner`` or ``member`` in a
    fresh browser context at 1366x900; downloads are accepted."""
    contexts = []

    def _visit(role: str) -> Visitor:
        context = browser.new_context(viewport=WIDE, accept_downloads=True)
        contexts.append(context)
        visitor = Visitor(page=context.new_page(), base_url=site.url, role=role)
        account = site.owner if role == "owner" else site.member
        visitor.log_in(account.username)
        return visitor

    yield _visit
    for context in contexts:
        context.close()
