"""Management commands: createmember, seed, ensure_owner."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.authtoken.models import Token

from reputation.models import Ledger
from tracker import seed_data
from tracker.models import Category, ClientPrefix, Member, SitePage
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- createmember ---------------------------------------------------------------------------


def _set_password_through(client, url: str, password: str) -> None:
    """Follow a set-password link as a browser would and choose ``password``."""
    path = url.removeprefix(settings.PBTS_BASE_URL)
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")


def test_createmember_prints_passkey_token_and_a_one_time_set_password_link(client):
    out, _ = _run("createmember", "carol")
    lines = out.splitlines()
    assert len(lines) == 3
    passkey = re.fullmatch(r"passkey=([0-9a-f]{32})", lines[0]).group(1)
    token = re.fullmatch(r"token=(\S+)", lines[1]).group(1)
    url = re.fullmatch(r"set_password_url=(\S+)", lines[2]).group(1)
    member = Member.objects.get(username="carol")
    assert member.passkey == passkey
    assert Token.objects.get(key=token).user == member
    assert Ledger.objects.filter(member=member).exists()
    assert not member.has_usable_password() and not member.is_staff

    _set_password_through(client, url, "a long pass phrase 42")
    assert client.login(username="carol", password="a long pass phrase 42")
    # The link worked once: the password changed, so its token is void.
    again = client.get(url.removeprefix(settings.PBTS_BASE_URL), follow=True)
    assert "new_password1" not in again.content.decode()


def test_createmember_takes_the_password_from_the_environment(client, monkeypatch):
    monkeypatch.setenv("PBTS_MEMBER_PASSWORD", "correct horse battery 7")
    out, _ = _run("createmember", "erin", "--staff")
    assert [line.split("=")[0] for line in out.splitlines()] == ["passkey", "token"]
    assert client.login(username="erin", password="correct horse battery 7")
    assert client.get(reverse("admin:index")).status_code == 200


def test_createmember_asks_for_the_password_twice(client, monkeypatch):
    answers = iter(["tricky pass phrase 9", "tricky pass phrase 9"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    _run("createmember", "fay", "--password")
    assert client.login(username="fay", password="tricky pass phrase 9")


@pytest.mark.parametrize(
    ("answers", "message"),
    [(["first pass phrase 1", "other pass phrase 2"], "differ"), (["fay", "fay"], "too")],
)
def test_createmember_refuses_a_mismatched_or_weak_password(monkeypatch, answers, message):
    replies = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(replies))
    with pytest.raises(CommandError, match=message):
        _run("createmember", "fay", "--password")
    assert not Member.objects.exists()


def test_createmember_staff_with_email():
    _run("createmember", "mod", "--staff", "--email", "mod@example.org")
    member = Member.objects.get(username="mod")
    assert member.is_staff and not member.is_superuser
    assert member.email == "mod@example.org"


def test_createmember_with_a_taken_name_fails_cleanly():
    MemberFactory(username="dave")
    with pytest.raises(CommandError, match="taken"):
        _run("createmember", "DAVE")
    assert Member.objects.filter(username__iexact="dave").count() == 1


@pytest.mark.parametrize("args", [("bad name!",), ("x" * 151,), ("ok", "--email", "nope")])
def test_createmember_refuses_invalid_input(args):
    with pytest.raises(CommandError):
        _run("createmember", *args)
    assert not Member.objects.exists()


# --- seed -----------------------------------------------------------------------------------


def _counts() -> tuple[int, int, int]:
    return Category.objects.count(), ClientPrefix.objects.count(), SitePage.objects.count()


def test_seed_is_idempotent_and_loads_the_basics():
    first_out, _ = _run("seed")
    first = _counts()
    assert first == (
        len(seed_data.CATEGORIES),
        len(seed_data.CLIENT_PREFIXES),
        len(seed_data.PAGES),
    )
    _run("seed")
    assert _counts() == first
    assert Category.objects.filter(slug="other").exists()
    assert ClientPrefix.objects.filter(prefix="-TR4", is_allowed=True).exists()
    assert {"-qB5", "-LT2", "A2-", "-lt0"} <= set(
        ClientPrefix.objects.values_list("prefix", flat=True)
    )
    assert set(SitePage.objects.values_list("slug", flat=True)) == {"rules", "faq"}
    assert "7 categories" in first_out


def test_seed_pages_state_the_ratio_rule_from_settings(settings):
    settings.MIN_RATIO = 0.7
    settings.PBTS_RATIO_GRACE_BYTES = 3 * 1024**3
    settings.PBTS_BASE_URL = "https://tracker.example.org"
    _run("seed")
    rules = SitePage.objects.get(slug="rules").body
    assert "**0.7**" in rules and "**3 GiB**" in rules
    faq = SitePage.objects.get(slug="faq").body
    assert "https://tracker.example.org/announce/<your passkey>" in faq
    assert "receipt" in faq.lower()


def test_seed_keeps_staff_edits_unless_told_to_overwrite():
    _run("seed")
    SitePage.objects.filter(slug="rules").update(body="Our own rules.")
    ClientPrefix.objects.filter(prefix="-TR3").update(is_allowed=False)
    Category.objects.filter(slug="books").update(name="E-books")
    _run("seed")
    assert SitePage.objects.get(slug="rules").body == "Our own rules."
    assert ClientPrefix.objects.get(prefix="-TR3").is_allowed is False
    assert Category.objects.get(slug="books").name == "E-books"
    assert _counts()[0] == len(seed_data.CATEGORIES)
    _run("seed", "--overwrite-pages")
    assert "Our own rules." not in SitePage.objects.get(slug="rules").body


def test_seed_does_not_duplicate_a_category_staff_renamed_the_slug_of():
    Category.objects.create(name="Movies", slug="films")
    _run("seed")
    assert Category.objects.filter(name__iexact="movies").count() == 1
    assert Category.objects.count() == len(seed_data.CATEGORIES)


def test_human_bytes():
    assert seed_data.human_bytes(5 * 1024**3) == "5 GiB"
    assert seed_data.human_bytes(1536 * 1024**2) == "1.5 GiB"
    assert seed_data.human_bytes(512 * 1024**2) == "512 MiB"


# --- ensure_owner ---------------------------------------------------------------------------


def test_ensure_owner_twice_creates_one_superuser_and_prints_password_once(settings):
    settings.PBTS_OWNER_USERNAME = "boss"
    settings.PBTS_OWNER_EMAIL = "boss@example.org"
    settings.PBTS_OWNER_PASSWORD = ""
    first, _ = _run("ensure_owner")
    match = re.fullmatch(r"Owner account 'boss' created; password: (\S+)\n", first)
    assert match, first
    password = match.group(1)
    owner = Member.objects.get(username="boss")
    assert owner.is_superuser and owner.is_staff and owner.check_password(password)
    assert Ledger.objects.filter(member=owner).exists()
    second, _ = _run("ensure_owner")
    assert password not in second and "exists" in second
    assert Member.objects.filter(is_superuser=True).count() == 1


def test_ensure_owner_never_prints_a_configured_password(settings):
    settings.PBTS_OWNER_USERNAME = "boss"
    settings.PBTS_OWNER_PASSWORD = "configured-secret-Pa55"
    out, _ = _run("ensure_owner")
    assert "configured-secret-Pa55" not in out and "created" in out
    assert Member.objects.get(username="boss").check_password("configured-secret-Pa55")
    again, _ = _run("ensure_owner")
    assert "configured-secret-Pa55" not in again
    assert Member.objects.filter(username="boss").count() == 1


def test_ensure_owner_warns_when_the_name_belongs_to_a_plain_member(settings):
    settings.PBTS_OWNER_USERNAME = "boss"
    MemberFactory(username="boss")
    out, err = _run("ensure_owner")
    assert "exists" in out and "not a superuser" in err
    assert not Member.objects.filter(is_superuser=True).exists()
