"""Two-factor authentication in a real browser (issue 15), at 1366 and 390 px: a member sets up
an authenticator app from the key the page shows (no JavaScript needed, the QR code is an
image), sees the recovery codes, then logs in with a code; with PBTS_STAFF_REQUIRE_2FA the
owner is sent to set it up and the admin's login asks for the code."""

from __future__ import annotations

import time
from base64 import b32decode
from typing import Any

from django.test import override_settings
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser

from tests.pages.browser import NARROW, PASSWORD, WIDE, SiteData, Visitor
from tracker.tests.test_two_factor import code_for


def _totp_from_page_key(spaced_key: str) -> str:
    """The current code of the key the setup page shows (groups of four base32 letters)."""
    key = b32decode(spaced_key.replace(" ", "") + "=" * (-len(spaced_key.replace(" ", "")) % 8))
    totp = TOTP(key, 30, 0, 6, 0)
    totp.time = time.time()
    return f"{totp.token():06d}"


def _fits_both(visitor: Visitor, name: str) -> None:
    for viewport in (WIDE, NARROW):
        visitor.assert_fits(name, viewport)
        visitor.screenshot(name)
    visitor.page.set_viewport_size(WIDE)
    visitor.assert_no_console_errors(name)


def _submit(visitor: Visitor) -> int:
    with visitor.page.expect_navigation() as navigation:
        visitor.page.click("main form button[type=submit]")
    response = navigation.value
    assert response is not None
    return response.status


def _fresh_visitor(browser: Browser, site: SiteData, role: str) -> tuple[Any, Visitor]:
    context = browser.new_context(viewport=WIDE)
    return context, Visitor(page=context.new_page(), base_url=site.url, role=role)


def test_a_member_sets_up_two_factor_and_logs_in_with_a_code(
    visit: Any, browser: Browser, site: SiteData
):
    visitor: Visitor = visit("member")
    visitor.check(reverse("security"), "security-2fa-off")
    visitor.page.click("text=Set up two-factor authentication")
    visitor.page.wait_for_load_state("load")
    assert visitor.page.url == visitor.url(reverse("two_factor_setup"))
    _fits_both(visitor, "two-factor-setup")
    assert visitor.page.locator("img.qr").evaluate("img => img.naturalWidth") > 0
    key = visitor.page.inner_text("ol.steps code.copy >> nth=0")
    visitor.page.fill("input[name=code]", _totp_from_page_key(key))
    assert _submit(visitor) == 200
    codes = visitor.page.locator("ol.recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    _fits_both(visitor, "two-factor-recovery-codes")
    visitor.check(reverse("security"), "security-2fa-on")
    assert "Recovery codes left: 10" in visitor.page.inner_text("main")

    context, fresh = _fresh_visitor(browser, site, "member-2fa")
    try:
        fresh.goto("/login/")
        fresh.page.fill("input[name=username]", site.member.username)
        fresh.page.fill("input[name=password]", PASSWORD)
        assert _submit(fresh) == 200
        assert fresh.page.url == fresh.url(reverse("login_verify"))
        _fits_both(fresh, "login-verify")
        device = TOTPDevice.objects.get(user=site.member, confirmed=True)
        fresh.page.fill("input[name=code]", code_for(device))
        assert _submit(fresh) == 200
        assert fresh.page.url == fresh.url("/")
        fresh.check(reverse("profile"), "profile-after-2fa")
    finally:
        context.close()


def test_the_owner_is_sent_to_set_up_two_factor_then_the_admin_asks_for_codes(
    browser: Browser, site: SiteData
):
    with override_settings(PBTS_STAFF_REQUIRE_2FA=True):
        context, owner = _fresh_visitor(browser, site, "owner-2fa")
        try:
            owner.goto("/admin/login/?next=/admin/")
            owner.page.fill("input[name=username]", "owner")
            owner.page.fill("input[name=password]", PASSWORD)
            with owner.page.expect_navigation():
                owner.page.click("input[type=submit]")
            assert owner.page.url.startswith(owner.url(reverse("two_factor_setup")))
            assert "Staff accounts need two-factor authentication" in owner.page.inner_text("main")
            _fits_both(owner, "owner-two-factor-setup")
            key = owner.page.inner_text("ol.steps code.copy >> nth=0")
            owner.page.fill("input[name=code]", _totp_from_page_key(key))
            assert _submit(owner) == 200
            owner.page.click("text=I saved my recovery codes")
            owner.page.wait_for_load_state("load")
            assert owner.page.url == owner.url("/admin/")
        finally:
            context.close()

        context, again = _fresh_visitor(browser, site, "owner-admin-verify")
        try:
            again.goto("/admin/login/?next=/admin/")
            again.page.fill("input[name=username]", "owner")
            again.page.fill("input[name=password]", PASSWORD)
            with again.page.expect_navigation():
                again.page.click("input[type=submit]")
            assert again.page.url == again.url(reverse("admin:login_verify"))
            _fits_both(again, "admin-login-verify")
            device = TOTPDevice.objects.get(user=site.owner, confirmed=True)
            again.page.fill("input[name=code]", code_for(device))
            with again.page.expect_navigation():
                again.page.click("input[type=submit]")
            assert again.page.url == again.url("/admin/")
            assert "Moderation" in again.page.inner_text("body")
        finally:
            context.close()
