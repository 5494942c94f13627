"""Password guessing is limited (issue 14): the site's login and the admin's lock a username
out from one address after a few failures (django-axes), and password-reset requests, which
send mail, are rate limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from tracker.models import Member
from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed logins"


@pytest.fixture
def alice() -> Member:
    return MemberFactory(username="alice", email="alice@example.org")


@pytest.fixture
def moderator() -> Member:
    return MemberFactory(username="mod", is_staff=True)


def _login(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password, "next": "/"})


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_25_wrong_passwords_then_the_right_one_is_refused(url_name, moderator):
    url = reverse(url_name)
    client = Client()
    for _ in range(25):
        assert not _logged_in(client)
        _login(client, url, "mod", "wrong guess")
    response = _login(client, url, "mod", DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert not _logged_in(client)


def test_the_lockout_starts_at_the_limit_and_a_success_before_it_resets_the_count(alice):
    url = reverse("login")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, url, "alice", "wrong guess")
        assert response.status_code == 200 and LOCKED not in response.content.decode()
    assert _login(client, url, "alice", DEFAULT_PASSWORD).status_code == 302
    assert _logged_in(client)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, url, "alice", "wrong guess")
    assert _login(client, url, "alice", DEFAULT_PASSWORD).status_code == 302  # count was reset
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        last = _login(client, url, "alice", "wrong guess")
    assert last.status_code == 429 and LOCKED in last.content.decode()


def test_the_lockout_is_per_address_so_an_attacker_cannot_lock_a_member_out(alice):
    url = reverse("login")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(25):
        _login(attacker, url, "alice", "wrong guess")
    assert _login(attacker, url, "alice", DEFAULT_PASSWORD).status_code == 429
    member = Client(REMOTE_ADDR="198.51.100.7")
    assert _login(member, url, "alice", DEFAULT_PASSWORD).status_code == 302
    assert _logged_in(member)


def test_a_forged_forwarded_for_header_does_not_reset_the_count(alice):
    url = reverse("login")
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(25):
        client.post(
            url,
            {"username": "alice", "password": "wrong guess"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
    response = client.post(
        url, {"username": "alice", "password": DEFAULT_PASSWORD}, HTTP_X_FORWARDED_FOR="10.1.1.1"
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(alice):
    url = reverse("login")
    proxy = Client(REMOTE_ADDR="127.0.0.9")
    with override_settings(PBTS_TRUSTED_PROXIES=["127.0.0.9"]):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            proxy.post(
                url,
                {"username": "alice", "password": "wrong"},
                HTTP_X_FORWARDED_FOR="203.0.113.9",
            )
        attacker = proxy.post(
            url,
            {"username": "alice", "password": DEFAULT_PASSWORD},
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
        member = Client(REMOTE_ADDR="127.0.0.9").post(
            url,
            {"username": "alice", "password": DEFAULT_PASSWORD},
            HTTP_X_FORWARDED_FOR="198.51.100.7",
        )
    assert attacker.status_code == 429
    assert member.status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


def test_the_lockout_ends_after_the_cool_off(alice):
    url = reverse("login")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, url, "alice", "wrong guess")
    assert _login(client, url, "alice", DEFAULT_PASSWORD).status_code == 429
    past = settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= past
        attempt.save()
    assert _login(client, url, "alice", DEFAULT_PASSWORD).status_code == 302


def test_no_password_is_stored_with_the_attempts(alice):
    _login(Client(), reverse("login"), "alice", "my secret guess")
    attempt = AccessAttempt.objects.get()
    assert "my secret guess" not in attempt.post_data


# --- password reset ---------------------------------------------------------------------


def test_password_reset_beyond_the_limit_sends_no_more_mail(alice):
    url = reverse("password_reset")
    client = Client()
    limit = settings.PBTS_PASSWORD_RESET_PER_HOUR
    for _ in range(limit):
        response = client.post(url, {"email": "alice"})
        assert response.status_code == 302
    assert len(mail.outbox) == limit
    for name in ("alice", "ALICE", "alice@example.org", "nobody"):
        response = client.post(url, {"email": name})
        assert response.status_code == 429
        assert "Too many password reset requests" in response.content.decode()
    assert len(mail.outbox) == limit


def test_password_reset_limit_per_account_holds_across_addresses(alice):
    url = reverse("password_reset")
    limit = settings.PBTS_PASSWORD_RESET_PER_HOUR
    for n in range(limit + 3):
        Client(REMOTE_ADDR=f"203.0.113.{n}").post(url, {"email": "Alice"})
    assert len(mail.outbox) == limit
    # Another account from a fresh address is unaffected.
    MemberFactory(username="bob", email="bob@example.org")
    assert Client(REMOTE_ADDR="198.51.100.1").post(url, {"email": "bob"}).status_code == 302
    assert len(mail.outbox) == limit + 1


def test_a_superuser_sees_and_lifts_lockouts_in_the_admin(alice, moderator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), reverse("login"), "alice", "wrong guess")
    changelist = reverse("admin:axes_accessattempt_changelist")
    staff = Client()
    staff.force_login(moderator)
    assert staff.get(changelist).status_code == 403
    owner = Client()
    owner.force_login(MemberFactory(is_superuser=True))
    assert owner.get(changelist).status_code == 200
    attempt = AccessAttempt.objects.get(username="alice")
    delete = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert owner.post(delete, {"post": "yes"}).status_code == 302
    assert _login(Client(), reverse("login"), "alice", DEFAULT_PASSWORD).status_code == 302
