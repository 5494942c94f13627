"""Remote images and the Content-Security-Policy in a real browser (issue 14): a member who
views a torrent page never contacts a third-party server, whether the image was dropped when
the description was rendered or (an old row, or one rendered with PBTS_REMOTE_IMAGES=allow)
is still in the stored HTML, where the policy blocks it; pages that run scripts (the
browsable API, admin forms) raise no policy violation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse

from tests.pages.browser import SiteData, Visitor
from tracker.models import Torrent
from tracker.tests.torrents import upload_torrent

# A 1x1 GIF, served to whoever asks.
PIXEL = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501


class _Spy(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(PIXEL)))
        self.end_headers()
        self.wfile.write(PIXEL)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def spy() -> Iterator[tuple[str, list[str]]]:
    """A third-party image server on another port of 127.0.0.1 (another origin) that records
    every request: ``(base URL, paths requested)``."""
    hits: list[str] = []
    handler = type("Spy", (_Spy,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_a_remote_image_is_neither_shown_nor_fetched(visit: Any, site: SiteData, spy):
    base, hits = spy
    torrent = upload_torrent(
        site.owner,
        name="With.A.Spy.Pixel",
        description=f"![the cover]({base}/rendered.gif)\n\n<img src='{base}/raw.gif' alt='raw'>",
    )
    visitor: Visitor = visit("member")
    visitor.goto(reverse("torrent_detail", args=[torrent.pk]))
    text = visitor.page.inner_text(".markdown")
    assert "the cover" in text and "raw" in text
    assert visitor.page.locator(".markdown img").count() == 0
    assert hits == []


def test_the_policy_blocks_a_remote_image_left_in_stored_html(visit: Any, site: SiteData, spy):
    base, hits = spy
    torrent = upload_torrent(site.owner, name="Stored.Before.Refuse")
    Torrent.objects.filter(pk=torrent.pk).update(
        description_html=f'<p><img src="{base}/stored.gif" alt="stored"></p>'
    )
    visitor: Visitor = visit("member")
    response = visitor.page.goto(visitor.url(reverse("torrent_detail", args=[torrent.pk])))
    assert response is not None and response.status == 200
    visitor.page.wait_for_load_state("load")
    assert hits == []
    # The browser says why: the only console error is the policy's refusal of that image.
    errors, visitor.errors = visitor.errors, []
    assert errors and all("Content Security Policy" in error for error in errors), errors


def test_script_pages_raise_no_policy_violation(visit: Any, site: SiteData):
    """The browsable API (scripts from /static/) and admin forms that run scripts (the
    prepopulated slug, the actions bar) load without a console error."""
    visitor: Visitor = visit("owner")
    visitor.goto("/api/v1/me/")
    assert site.owner.username in visitor.page.inner_text("body")
    visitor.goto(reverse("admin:tracker_sitepage_add"))
    visitor.page.locator("input[name=title]").press_sequentially("Some Title")
    assert visitor.page.input_value("input[name=slug]") == "some-title"
    visitor.goto(reverse("admin:tracker_torrentfile_changelist"))
    visitor.goto(reverse("admin:core_auditlog_changelist"))
    visitor.assert_no_console_errors("admin")
