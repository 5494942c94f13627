"""``/password/change/`` is throttled per account: after ``ATTEMPTS`` attempts in the window
even the right old password is refused, the password stays, and other accounts are not
affected."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tracker.tests.factories import DEFAULT_PASSWORD, MemberFactory
from tracker.views.password_change import ATTEMPTS, TOO_MANY

pytestmark = pytest.mark.django_db

NEW = "a brand new passphrase 77"


def _change(client, old: str):
    return client.post(
        reverse("password_change"),
        {"old_password": old, "new_password1": NEW, "new_password2": NEW},
    )


def test_wrong_old_passwords_are_throttled_then_even_the_right_one(client):
    member = MemberFactory()
    client.force_login(member)
    for _ in range(ATTEMPTS):
        response = _change(client, "not my password")
        assert response.status_code == 200
        assert TOO_MANY not in response.content.decode()
    response = _change(client, DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert TOO_MANY in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(DEFAULT_PASSWORD) and not member.check_password(NEW)


def test_the_limit_is_per_account_and_a_right_attempt_changes_it(client):
    guessed = MemberFactory()
    client.force_login(guessed)
    for _ in range(ATTEMPTS + 1):
        _change(client, "not my password")
    other = MemberFactory()
    client.force_login(other)
    response = _change(client, DEFAULT_PASSWORD)
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.check_password(NEW)
