"""Two-factor authentication (issue 15, docs/two-factor.md): members set up a TOTP app on the
security page and get 10 single-use recovery codes; logging in (site and admin) then needs a
code after the password; wrong codes are throttled and count towards the django-axes lockout;
with PBTS_STAFF_REQUIRE_2FA staff must set it up and verify each session before the admin or
the staff API answer; only a superuser resets a member's two-factor authentication (audited).
"""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from core import two_factor
from core.auth import PENDING_KEY
from core.errors import Conflict, NotPermitted
from core.models import AuditLog
from tracker.models import Member
from tracker.services.members import member_api_token, member_ban
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed logins"
NO_THROTTLE = {"OTP_TOTP_THROTTLE_FACTOR": 0, "OTP_STATIC_THROTTLE_FACTOR": 0}


# --- helpers --------------------------------------------------------------------------------


def code_for(device: TOTPDevice) -> str:
    """A TOTP code the device accepts now: the earliest step within its tolerance that is later
    than the last one used (a code is accepted once)."""
    device.refresh_from_db()
    now = time.time()
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = now + offset * device.step
        if totp.t() > device.last_t:
            return f"{totp.token():0{device.digits}d}"
    raise AssertionError("no usable code within the tolerance")


def wrong_code_for(device: TOTPDevice) -> str:
    """Six digits that no step within the tolerance produces."""
    device.refresh_from_db()
    valid = set()
    for offset in range(-3, 4):
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time() + offset * device.step
        valid.add(f"{totp.token():06d}")
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


def enrol(member: Member) -> tuple[TOTPDevice, list[str]]:
    """Set up two-factor authentication through the services; returns device and codes."""
    device = two_factor.totp_enrol_start(user=member)
    return two_factor.totp_enrol_confirm(user=member, code=code_for(device))


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def verified(client: Client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def password_step(client: Client, member: Member, url_name: str = "login", next_url: str = "/"):
    return client.post(
        reverse(url_name),
        {"username": member.username, "password": DEFAULT_PASSWORD, "next": next_url},
    )


@pytest.fixture
def alice() -> Member:
    return MemberFactory(username="alice")


@pytest.fixture
def moderator() -> Member:
    return MemberFactory(username="mod", is_staff=True)


@pytest.fixture
def owner() -> Member:
    return MemberFactory(username="boss", is_staff=True, is_superuser=True)


# --- setting it up --------------------------------------------------------------------------


def test_setting_up_shows_the_key_then_a_code_turns_it_on_and_shows_ten_codes_once(alice):
    client = Client()
    client.force_login(alice)
    security = client.get(reverse("security")).content.decode()
    assert "Set up two-factor authentication" in security
    me = APIClient()
    me.force_authenticate(alice)
    assert me.get(reverse("api:me")).json()["two_factor_enabled"] is False

    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    secret = re.search(r'<code class="copy">([A-Z2-7 ]+)</code>', html).group(1)
    assert secret.replace(" ", "") == device.config_url.split("secret=")[1].split("&")[0]
    assert 'src="data:image/svg+xml;base64,' in html and "otpauth://totp/" in html
    # A reload keeps the same key (the app may have scanned it already).
    client.get(reverse("two_factor_setup"))
    assert TOTPDevice.objects.filter(user=alice).count() == 1

    refused = client.post(reverse("two_factor_setup"), {"code": wrong_code_for(device)})
    assert refused.status_code == 200 and "not the one your app shows" in refused.content.decode()
    assert not two_factor.has_two_factor(alice)

    done = client.post(reverse("two_factor_setup"), {"code": code_for(device)})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    shown = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", done.content.decode())
    assert len(shown) == 10 == len(set(shown))
    stored = set(StaticToken.objects.filter(device__user=alice).values_list("token", flat=True))
    assert {code.replace("-", "") for code in shown} == stored
    assert two_factor.has_two_factor(alice) and verified(client)
    assert AuditLog.objects.filter(action="two_factor_enable", target_id=str(alice.pk)).exists()
    security = client.get(reverse("security")).content.decode()
    assert "Recovery codes left" in security and "<strong>10</strong>" in security
    # Setting up again is refused until it is turned off.
    assert client.get(reverse("two_factor_setup")).status_code == 302
    with pytest.raises(Conflict):
        two_factor.totp_enrol_start(user=alice)
    assert me.get(reverse("api:me")).json()["two_factor_enabled"] is True


def test_the_schema_lists_two_factor_enabled(alice):
    client = APIClient()
    client.force_authenticate(alice)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    field = schema["components"]["schemas"]["Me"]["properties"]["two_factor_enabled"]
    assert field["type"] == "boolean" and field["readOnly"] is True


# --- logging in -----------------------------------------------------------------------------


def test_login_needs_a_totp_code_after_the_password(alice):
    device, _ = enrol(alice)
    client = Client()
    response = password_step(client, alice, next_url="/profile/")
    assert response.status_code == 302 and response["Location"] == reverse("login_verify")
    assert not logged_in(client)
    # Nothing member-only opens with the password alone.
    assert client.get(reverse("profile")).status_code == 302
    page = client.get(reverse("login_verify"))
    assert page.status_code == 200 and "authenticator app" in page.content.decode()
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert logged_in(client) and verified(client)
    assert PENDING_KEY not in client.session
    assert client.get(reverse("profile")).status_code == 200


@override_settings(**NO_THROTTLE)
def test_a_wrong_or_reused_code_is_refused(alice):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice)
    response = client.post(reverse("login_verify"), {"code": wrong_code_for(device)})
    assert response.status_code == 200 and "wrong or was already used" in response.content.decode()
    assert not logged_in(client)
    for junk in ("", "abc", "1" * 40, "\uff11\uff12\uff13\uff14\uff15\uff16"):
        client.post(reverse("login_verify"), {"code": junk})
        assert not logged_in(client)
    code = code_for(device)
    assert client.post(reverse("login_verify"), {"code": code}).status_code == 302
    assert logged_in(client)
    # The same code is not accepted a second time (replay).
    other = Client()
    password_step(other, alice)
    assert other.post(reverse("login_verify"), {"code": code}).status_code == 200
    assert not logged_in(other)


def test_wrong_codes_throttle_the_device_even_for_the_right_code(alice):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice)
    client.post(reverse("login_verify"), {"code": wrong_code_for(device)})
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert "Too many wrong codes: wait" in response.content.decode()
    assert not logged_in(client)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


@override_settings(**NO_THROTTLE)
def test_a_recovery_code_works_once(alice):
    _, codes = enrol(alice)
    first = Client()
    password_step(first, alice)
    typed = two_factor.format_recovery_code(codes[0]).upper()  # "ABCD-EFGH" is accepted
    assert first.post(reverse("login_verify"), {"code": typed}).status_code == 302
    assert logged_in(first) and verified(first)
    assert two_factor.recovery_codes_left(alice) == 9
    second = Client()
    password_step(second, alice)
    response = second.post(reverse("login_verify"), {"code": codes[0]})
    assert response.status_code == 200 and not logged_in(second)
    assert second.post(reverse("login_verify"), {"code": codes[1]}).status_code == 302
    assert two_factor.recovery_codes_left(alice) == 8


@override_settings(**NO_THROTTLE)
def test_repeated_wrong_codes_lock_the_login_out(alice):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("login_verify"), {"code": wrong_code_for(device)})
        assert response.status_code == 200 and LOCKED not in response.content.decode()
    response = client.post(reverse("login_verify"), {"code": wrong_code_for(device)})
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert not logged_in(client) and PENDING_KEY not in client.session
    # The right code no longer helps, nor does the password: start again later.
    assert client.post(reverse("login_verify"), {"code": code_for(device)}).status_code == 302
    assert not logged_in(client)
    response = password_step(client, alice)
    assert response.status_code == 429 and not logged_in(client)
    # From another address the member is not locked out.
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert password_step(other, alice).status_code == 302


@override_settings(**NO_THROTTLE)
def test_password_failures_and_wrong_codes_share_one_count(alice):
    device, _ = enrol(alice)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    password_step(client, alice)
    response = client.post(reverse("login_verify"), {"code": wrong_code_for(device)})
    assert response.status_code == 429 and not logged_in(client)


def test_a_banned_member_is_refused_with_or_without_a_code(alice, owner):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice)
    member_ban(member=alice, actor=owner, reason="cheating")
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert not logged_in(client)
    response = password_step(Client(), alice)
    assert response.status_code == 200 and "banned: cheating" in response.content.decode()


def test_the_code_step_expires_and_needs_the_password_again(alice):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice)
    session = client.session
    session[PENDING_KEY]["at"] -= 301
    session.save()
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert not logged_in(client)
    assert client.get(reverse("login_verify"))["Location"] == reverse("login")


def test_the_code_step_does_not_redirect_to_another_site(alice):
    device, _ = enrol(alice)
    client = Client()
    password_step(client, alice, next_url="https://evil.example/")
    response = client.post(reverse("login_verify"), {"code": code_for(device)})
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_members_without_two_factor_log_in_with_the_password(alice):
    client = Client()
    response = password_step(client, alice)
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in(client) and not verified(client)


# --- recovery codes and turning it off -----------------------------------------------------


@override_settings(**NO_THROTTLE)
def test_new_recovery_codes_need_a_code_or_the_password_and_void_the_old(alice):
    device, codes = enrol(alice)
    client = Client()
    client.force_login(alice)
    url = reverse("two_factor_recovery_codes")
    assert client.get(url).status_code == 200
    response = client.post(url, {"password": "wrong"})
    assert response.status_code == 200 and "not your password" in response.content.decode()
    response = client.post(url, {})
    assert "Enter a code from your app or your password" in response.content.decode()
    response = client.post(url, {"code": code_for(device)})
    new = re.findall(r"<li><code>([a-z2-7-]{9})</code></li>", response.content.decode())
    assert len(new) == 10 and "no-store" in response["Cache-Control"]
    assert not set(codes) & {code.replace("-", "") for code in new}
    assert not two_factor.check_code(user=alice, code=codes[0]).ok
    assert two_factor.check_code(user=alice, code=new[0]).ok


@override_settings(**NO_THROTTLE)
def test_turning_it_off_needs_a_code_or_the_password(alice):
    device, _ = enrol(alice)
    client = Client()
    client.force_login(alice)
    url = reverse("two_factor_disable")
    response = client.post(url, {"code": wrong_code_for(device)})
    assert response.status_code == 200 and two_factor.has_two_factor(alice)
    response = client.post(url, {"password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and not two_factor.has_two_factor(alice)
    assert not StaticDevice.objects.filter(user=alice).exists()
    assert AuditLog.objects.filter(action="two_factor_disable").exists()
    assert password_step(Client(), alice)["Location"] == "/"
    # Pages of a member without two-factor authentication send them back to security.
    assert client.get(url)["Location"] == reverse("security")
    assert client.get(reverse("two_factor_recovery_codes"))["Location"] == reverse("security")


# --- staff ----------------------------------------------------------------------------------


@override_settings(PBTS_STAFF_REQUIRE_2FA=True)
def test_staff_without_two_factor_are_sent_to_set_it_up_before_the_admin_works(moderator):
    client = Client()
    response = password_step(client, moderator, next_url="/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_setup") + "?next=%2Fadmin%2F"
    assert logged_in(client)  # logged in, never locked out
    # Site pages too lead to the setup page (core.middleware.StaffTwoFactorMiddleware)...
    response = client.get(reverse("moderation:queue"))
    assert response.status_code == 302
    assert response["Location"] == reverse("two_factor_setup") + "?next=%2Fmoderation%2Fqueue%2F"
    assert client.get(reverse("home"))["Location"].startswith(reverse("two_factor_setup"))
    # ... but for the pages that lead there.
    assert client.get(reverse("security")).status_code == 200
    assert client.get(reverse("two_factor_setup")).status_code == 200
    # Every admin page leads to the setup page.
    response = client.get("/admin/tracker/member/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("two_factor_setup"))
    assert "Staff accounts need two-factor authentication" in response.content.decode()
    # The staff API refuses the session and the token alike.
    assert client.get(reverse("api:member-list")).status_code == 403
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(moderator)}")
    assert api.get(reverse("api:member-list")).status_code == 403
    assert api.get(reverse("api:me")).status_code == 200  # member endpoints still work
    # Setting it up in this session opens the admin and the staff API.
    device = TOTPDevice.objects.get(user=moderator, confirmed=False)
    page = client.post(reverse("two_factor_setup"), {"code": code_for(device), "next": "/admin/"})
    assert 'href="/admin/"' in page.content.decode()
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("api:member-list")).status_code == 200
    assert api.get(reverse("api:member-list")).status_code == 200
    assert client.get(reverse("moderation:queue")).status_code == 200


@override_settings(PBTS_STAFF_REQUIRE_2FA=True)
def test_an_unverified_staff_session_with_a_device_is_sent_to_the_code_step(moderator):
    # Two-factor authentication set up in another session leaves this one unverified: its
    # staff pages ask for a code first, then come back.
    client = Client()
    client.force_login(moderator)
    device, _ = enrol(moderator)
    response = client.get(reverse("moderation:queue"))
    assert response["Location"] == reverse("login_verify") + "?next=%2Fmoderation%2Fqueue%2F"
    response = client.post(
        reverse("login_verify"), {"code": code_for(device), "next": "/moderation/queue/"}
    )
    assert response["Location"] == "/moderation/queue/"
    assert client.get(reverse("moderation:queue")).status_code == 200


@override_settings(PBTS_STAFF_REQUIRE_2FA=True)
def test_members_pages_are_not_affected_by_the_staff_rule(alice):
    client = Client()
    client.force_login(alice)
    assert client.get(reverse("home")).status_code == 200


@override_settings(PBTS_STAFF_REQUIRE_2FA=False)
def test_without_the_setting_staff_use_the_admin_with_the_password_alone(moderator):
    client = Client()
    assert password_step(client, moderator, next_url="/admin/")["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("api:member-list")).status_code == 200


@pytest.mark.parametrize("required", [True, False])
def test_the_admin_login_asks_for_the_code(moderator, required):
    device, _ = enrol(moderator)
    with override_settings(PBTS_STAFF_REQUIRE_2FA=required):
        client = Client()
        response = password_step(client, moderator, "admin:login", next_url="/admin/")
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:login_verify")
        assert not logged_in(client)
        assert client.get("/admin/").status_code == 302
        page = client.get(reverse("admin:login_verify"))
        assert page.status_code == 200 and 'name="code"' in page.content.decode()
        response = client.post(reverse("admin:login_verify"), {"code": code_for(device)})
        assert response.status_code == 302 and response["Location"] == "/admin/"
        assert logged_in(client) and verified(client)
        assert client.get("/admin/").status_code == 200


@override_settings(PBTS_STAFF_REQUIRE_2FA=True)
def test_an_unverified_staff_session_must_give_a_code_for_the_admin(moderator):
    device, _ = enrol(moderator)
    client = Client()
    client.force_login(moderator)  # a session without a second factor
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("admin:login_verify"))
    assert client.get(reverse("api:member-list")).status_code == 403
    response = client.post(
        reverse("admin:login_verify"), {"code": code_for(device), "next": "/admin/"}
    )
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get(reverse("api:member-list")).status_code == 200


@override_settings(PBTS_STAFF_REQUIRE_2FA=True)
def test_a_banned_moderator_is_refused_by_the_admin_login_even_with_a_code(moderator, owner):
    enrol(moderator)
    member_ban(member=moderator, actor=owner, reason="abuse")
    response = password_step(Client(), moderator, "admin:login")
    assert response.status_code == 200 and "banned: abuse" in response.content.decode()


# --- staff reset ----------------------------------------------------------------------------


def test_only_a_superuser_resets_two_factor_and_it_is_audited(alice, moderator, owner):
    enrol(alice)
    with pytest.raises(NotPermitted):
        two_factor.two_factor_reset(member=alice, actor=moderator, reason="lost phone")
    assert two_factor.has_two_factor(alice)
    with pytest.raises(NotPermitted):
        two_factor.two_factor_reset(member=owner, actor=owner)

    mod_client = Client()
    mod_client.force_login(moderator)
    changelist = reverse("admin:tracker_member_changelist")
    page = mod_client.get(changelist)
    assert page.status_code == 200 and "reset_two_factor" not in page.content.decode()
    assert "column-two_factor" in page.content.decode()  # moderators see who has 2FA
    refused = mod_client.post(
        changelist,
        {
            "action": "reset_two_factor",
            "_selected_action": [alice.pk],
            "apply": "1",
            "reason": "lost phone",
        },
    )
    assert refused.status_code in (200, 302, 403)
    assert two_factor.has_two_factor(alice)

    owner_client = Client()
    owner_client.force_login(owner)
    assert "reset_two_factor" in owner_client.get(changelist).content.decode()
    asked = owner_client.post(
        changelist, {"action": "reset_two_factor", "_selected_action": [alice.pk]}
    )
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    assert two_factor.has_two_factor(alice)
    done = owner_client.post(
        changelist,
        {
            "action": "reset_two_factor",
            "_selected_action": [alice.pk],
            "apply": "1",
            "reason": "lost phone",
        },
    )
    assert done.status_code == 302
    assert not two_factor.has_two_factor(alice)
    assert not StaticDevice.objects.filter(user=alice).exists()
    row = AuditLog.objects.get(action="two_factor_reset")
    assert row.actor == owner and row.target_id == str(alice.pk) and row.reason == "lost phone"
    assert password_step(Client(), alice)["Location"] == "/"


def test_the_admin_offers_no_page_with_totp_keys_or_recovery_codes(owner):
    client = Client()
    client.force_login(owner)
    index = client.get("/admin/").content.decode()
    assert "otp_totp" not in index and "otp_static" not in index
