"""The bonus page in a real browser (docs/bonus.md) at 1366 and 390 px: the balance, the store's
forms (a purchase and a refusal, without JavaScript), the active token and the transactions;
the profile's bonus block for the member and for staff."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from reputation.services import MILLI, bonus_credit_earned
from tests.pages.browser import SiteData, Visitor


def test_member_buys_a_freeleech_token_on_the_bonus_page(visit: Any, site: SiteData):
    bonus_credit_earned(amounts={site.member.pk: 1234 * MILLI}, reference="seeding")
    visitor: Visitor = visit("member")
    page = visitor.page
    visitor.check(reverse("bonus"), "bonus")
    assert page.inner_text("#bonus-balance") == "1,234.000"
    torrent = site.multi_file_torrent

    def buy() -> None:
        page.fill("#torrent-freeleech", str(torrent.pk))
        with page.expect_navigation():
            page.click("#item-freeleech button[type=submit]")

    buy()
    assert page.url == visitor.url(reverse("bonus"))
    assert "Bought" in page.inner_text(".messages")
    assert page.inner_text("#bonus-balance") == "984.000"
    assert torrent.name[:40] in page.inner_text("ul.tokens")
    visitor.assert_no_console_errors("bought")
    visitor.check(reverse("bonus"), "bonus-with-token")  # a 140-character name, both widths
    buy()  # a second token on the same torrent is refused, with the reason on the page
    assert "already active" in page.inner_text("#store-errors")
    assert page.inner_text("#bonus-balance") == "984.000"
    # The refusal is answered 400 on purpose (the browser logs that status); nothing else.
    visitor.errors = [e for e in visitor.errors if "status of 400 (Bad Request)" not in e]
    visitor.assert_no_console_errors("refused")
    for viewport in ({"width": 1366, "height": 900}, {"width": 390, "height": 844}):
        visitor.assert_fits("bonus refusal", viewport)
    visitor.check(reverse("profile"), "profile-bonus")
    assert "984.000" in page.inner_text(".bonus-block")


def test_staff_see_a_member_balance_on_the_profile(visit: Any, site: SiteData):
    bonus_credit_earned(amounts={site.member.pk: 7 * MILLI}, reference="seeding")
    visitor: Visitor = visit("owner")
    visitor.check(reverse("member_detail", args=[site.member.username]), "member-bonus")
    assert "7.000" in visitor.page.inner_text(".bonus-block")
