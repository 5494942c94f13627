"""Helpers of the browser page suite: Chromium's settings, the widths, names as long as the forms
accept, and :class:`Visitor`, a logged-in page that checks every page it opens (HTTP 200, no
console error, no horizontal overflow) and saves screenshots into ``.local/screenshots/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Error, Page

from tracker.models import Member, Torrent

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium dials out (and this network refuses it).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1366, "height": 900}
NARROW = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"
PASSWORD = "page suite password 7 horses"

# Names as long as the forms accept, with no space to break at (scene-style release names).
_SCENE = "Extremely.Long.Release.Name.With.No.Spaces.2025.2160p.UHD.BluRay.REMUX.HDR10.DV-GROUP."
NAME_255 = (_SCENE * 4)[:255]
NAME_140 = ("Another." + _SCENE * 2)[:140]
USERNAME_150 = ("member.with.a.very.long.username_" * 5)[:150]
# 254 characters: the longest address an EmailField accepts.
LONG_EMAIL = "x" * 64 + "@" + ".".join(["a" * 63, "b" * 63, "c" * 57]) + ".org"

# Lists the elements that stick out on the right, to say where an overflow comes from.
_MEASURE_JS = """() => {
  const width = window.innerWidth;
  const offenders = [];
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > width + 0.5 && offenders.length < 8) {
      const cls = typeof el.className === "string" && el.className
        ? "." + el.className.trim().split(/\\s+/).join(".") : "";
      offenders.push(`${el.tagName.toLowerCase()}${cls} right=${Math.round(right)}`);
    }
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: width, offenders};
}"""


@dataclass
class SiteData:
    """What the ``site`` fixture made: the accounts, torrents and the live server's URL."""

    url: str
    owner: Member
    member: Member
    long_torrent: Torrent
    multi_file_torrent: Torrent


@dataclass
class Visitor:
    """A logged-in browser page that asserts, page after page: HTTP 200, no console error,
    and no horizontal overflow; it saves screenshots named by role, page and width."""

    page: Page
    base_url: str
    role: str
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} at {message.location}")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"page error: {error}")

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (absolute URLs are returned as they are)."""
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def goto(self, path: str) -> None:
        """Open ``path``; assert status 200 and that no console error was logged."""
        response = self.page.goto(self.url(path), wait_until="load")
        assert response is not None, path
        assert response.status == 200, f"{path}: HTTP {response.status}"
        self.assert_no_console_errors(path)

    def assert_no_console_errors(self, where: str) -> None:
        """Fail with the console errors collected since the last check."""
        errors, self.errors = self.errors, []
        assert not errors, f"{where}: {errors}"

    def measure(self) -> dict[str, Any]:
        """``scrollWidth``, ``innerWidth`` and the elements sticking out on the right."""
        return self.page.evaluate(_MEASURE_JS)

    def assert_fits(self, where: str, viewport: dict[str, int]) -> None:
        """Resize to ``viewport``; assert no horizontal overflow there."""
        self.page.set_viewport_size(viewport)
        figures = self.measure()
        assert figures["scrollWidth"] <= figures["innerWidth"], (
            f"{where} at {viewport['width']} px overflows: {figures}"
        )

    def assert_fits_inside(self, selector: str, where: str) -> None:
        """Assert that the element at ``selector`` does not scroll sideways (its content fits)."""
        widths = self.page.eval_on_selector(
            selector, "el => ({scrollWidth: el.scrollWidth, clientWidth: el.clientWidth})"
        )
        assert widths["scrollWidth"] <= widths["clientWidth"], f"{where}: {selector} {widths}"

    def screenshot(self, name: str) -> None:
        """Save a full-page screenshot as ``.local/screenshots/<role>-<name>-<width>.png``."""
        width = self.page.viewport_size["width"] if self.page.viewport_size else 0
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "page"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{self.role}-{slug}-{width}.png", full_page=True)

    def check(self, path: str, name: str, *, widths: tuple[dict[str, int], ...] = ()) -> None:
        """Open ``path`` at 1366 px, then check that it fits every width of ``widths`` (both
        by default), taking a screenshot at each; the page is left at 1366 px."""
        self.page.set_viewport_size(WIDE)
        self.goto(path)
        for viewport in widths or (WIDE, NARROW):
            self.page.set_viewport_size(viewport)
            self.screenshot(name)
            self.assert_fits(name, viewport)
        self.page.set_viewport_size(WIDE)
        self.assert_no_console_errors(path)

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        """Log in through the login form; assert it lands on the home page."""
        self.goto("/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation() as navigation:
            self.page.click("main form button[type=submit]")
        response = navigation.value
        assert response is not None and response.status == 200, "login"
        assert self.page.url == self.url("/"), f"login landed on {self.page.url}"
        self.assert_no_console_errors("login")
