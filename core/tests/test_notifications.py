"""The notification service: rows, e-mail after commit, mark-read rules, selectors."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import transaction

from core.errors import InvalidInput
from core.models import Notification
from core.notifications import (
    mark_read,
    notification_list,
    notify,
    set_email_enabled,
    unread_count,
)
from tracker.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_notify_records_a_row_for_the_member_only():
    alice, bob = MemberFactory(), MemberFactory()
    n = notify(member=alice, kind="torrent_approved", subject="  Approved:\n x ", url="/t/1/")
    assert n.member_id == alice.pk and n.read_at is None
    assert n.subject == "Approved: x"
    assert unread_count(alice) == 1
    assert unread_count(bob) == 0
    assert list(notification_list(bob)) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "", "subject": "s"}, "kind"),
        ({"kind": "k" * 65, "subject": "s"}, "kind"),
        ({"kind": "k", "subject": "   "}, "subject"),
        ({"kind": "k", "subject": "s", "url": "https://evil.example/"}, "url"),
        ({"kind": "k", "subject": "s", "url": "//evil.example/"}, "url"),
        ({"kind": "k", "subject": "s", "url": "javascript:alert(1)"}, "url"),
    ],
)
def test_notify_refuses_bad_input(kwargs, field):
    member = MemberFactory()
    with pytest.raises(InvalidInput) as exc:
        notify(member=member, **kwargs)
    assert exc.value.field == field
    assert not Notification.objects.filter(member=member).exists()


def test_no_mail_without_opt_in(django_capture_on_commit_callbacks):
    member = MemberFactory()
    with django_capture_on_commit_callbacks(execute=True):
        notify(member=member, kind="k", subject="hello")
    assert mail.outbox == []


def test_mail_after_commit_when_opted_in(django_capture_on_commit_callbacks):
    member = MemberFactory(email="m@example.org")
    set_email_enabled(member=member, enabled=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify(member=member, kind="k", subject="hello", body="text", url="/torrents/1/")
    assert mail.outbox == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["m@example.org"] and "hello" in sent.subject
    assert "text" in sent.body and "/torrents/1/" in sent.body


def test_no_mail_when_opted_in_without_address(django_capture_on_commit_callbacks):
    member = MemberFactory(email="")
    set_email_enabled(member=member, enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        notify(member=member, kind="k", subject="hello")
    assert mail.outbox == []


def test_rolled_back_caller_leaves_no_row_and_no_mail(django_capture_on_commit_callbacks):
    member = MemberFactory()
    set_email_enabled(member=member, enabled=True)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notify(member=member, kind="k", subject="hello")
        raise RuntimeError
    assert callbacks == []
    assert not Notification.objects.filter(member=member).exists()


def test_mail_failure_is_logged_not_raised(settings, django_capture_on_commit_callbacks, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    member = MemberFactory()
    set_email_enabled(member=member, enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        n = notify(member=member, kind="k", subject="hello")
    assert Notification.objects.filter(pk=n.pk).exists()
    assert "mail not sent" in caplog.text


def test_mark_read_ignores_other_members_ids():
    alice, bob = MemberFactory(), MemberFactory()
    mine = notify(member=alice, kind="k", subject="a")
    theirs = notify(member=bob, kind="k", subject="b")
    assert mark_read(member=alice, ids=[theirs.pk, 999_999_999]) == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert mark_read(member=alice, ids=[mine.pk, theirs.pk]) == 1
    assert unread_count(alice) == 0 and unread_count(bob) == 1
    assert mark_read(member=alice, ids=[mine.pk]) == 0  # already read
    assert mark_read(member=alice, ids=[]) == 0


def test_mark_all_read_only_touches_own_rows():
    alice, bob = MemberFactory(), MemberFactory()
    for i in range(3):
        notify(member=alice, kind="k", subject=f"a{i}")
    notify(member=bob, kind="k", subject="b")
    assert mark_read(member=alice) == 3
    assert unread_count(alice) == 0 and unread_count(bob) == 1
    assert notification_list(alice, unread=True).count() == 0
    assert notification_list(alice).count() == 3
