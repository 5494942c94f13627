"""Notifications: the one service every app calls to tell a member something, and its reads.

``notify`` writes a :class:`core.models.Notification` in the caller's transaction (a torrent
rejected and its notification commit or roll back together) and, when the member opted in to
e-mail (:class:`core.models.NotificationSettings`) and has an address, mails it once that
transaction commits. A mail failure is logged and never raised: the event already happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.errors import InvalidInput
from core.models import Notification, NotificationSettings

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

log = logging.getLogger(__name__)

SUBJECT_MAX = 255
URL_MAX = 500
# The header's unread count is cached this long (seconds); every write through this module
# forgets it at once, so the TTL only bounds a row changed some other way.
UNREAD_CACHE_SECONDS = 300


def _site_url(url: str) -> str:
    """Check a notification's link: empty or site-relative (``/path``, never ``//host``)."""
    url = url.strip()
    if url and (not url.startswith("/") or url.startswith("//") or len(url) > URL_MAX):
        raise InvalidInput("A notification's link must be a site-relative path.", field="url")
    return url


def notify(
    *, member: AbstractBaseUser, kind: str, subject: str, body: str = "", url: str = ""
) -> Notification:
    """Record a notification for ``member`` and, if they opted in, e-mail it after commit.

    Runs in the caller's transaction (no transaction of its own): a rolled-back caller leaves
    neither the row nor the mail.

    Args:
        member: the member told (a ``Member``).
        kind: a short slug naming the event, such as ``torrent_approved`` (max 64 characters).
        subject: one line (cut to 255 characters).
        body: plain text, shown escaped; never HTML.
        url: an optional site-relative link such as ``/torrents/12/``.

    Raises:
        InvalidInput: an empty ``kind`` or ``subject``, or a ``url`` that is not site-relative.
    """
    kind = kind.strip()
    subject = " ".join(subject.split())[:SUBJECT_MAX]
    if not kind or len(kind) > 64:
        raise InvalidInput("A notification needs a kind of 1-64 characters.", field="kind")
    if not subject:
        raise InvalidInput("A notification needs a subject.", field="subject")
    notification = Notification.objects.create(
        member=member, kind=kind, subject=subject, body=body, url=_site_url(url)
    )
    forget_unread_count(member.pk)
    address = getattr(member, "email", "") or ""
    if address and email_enabled(member):
        transaction.on_commit(lambda: _send_mail(notification, address))
    return notification


def _send_mail(notification: Notification, address: str) -> None:
    """Mail one notification (after commit); a failure is logged, never raised."""
    lines = [notification.body] if notification.body else []
    if notification.url:
        lines.append(f"{settings.PBTS_BASE_URL}{notification.url}")
    lines.append(
        f"You receive this because you turned on e-mail notifications: "
        f"{settings.PBTS_BASE_URL}/notifications/"
    )
    try:
        send_mail(
            subject=f"[{settings.PBTS_SITE_NAME}] {notification.subject}",
            message="\n\n".join(lines),
            from_email=None,
            recipient_list=[address],
        )
    except Exception:  # any backend error: the notification itself is already stored
        log.exception("notification %s: mail not sent", notification.pk)


def email_enabled(member: AbstractBaseUser) -> bool:
    """Whether ``member`` opted in to e-mail copies (no settings row: no)."""
    return NotificationSettings.objects.filter(member=member, email_enabled=True).exists()


def set_email_enabled(*, member: AbstractBaseUser, enabled: bool) -> NotificationSettings:
    """Turn e-mail copies of ``member``'s notifications on or off (their own choice)."""
    row, _ = NotificationSettings.objects.update_or_create(
        member=member, defaults={"email_enabled": bool(enabled)}
    )
    return row


def mark_read(*, member: AbstractBaseUser, ids: Iterable[int] | None = None) -> int:
    """Mark ``member``'s unread notifications read: those in ``ids``, or all when ``None``.

    Ids of other members' notifications, unknown or already read ones are ignored (never an
    error, never a change to someone else's rows). Returns how many rows changed.
    """
    rows = Notification.objects.filter(member=member, read_at__isnull=True)
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        rows = rows.filter(pk__in=ids)
    changed = rows.update(read_at=timezone.now())
    if changed:
        forget_unread_count(member.pk)
    return changed


def _unread_key(member_id: int) -> str:
    return f"notifications:unread:{member_id}"


def forget_unread_count(member_id: int) -> None:
    """Drop the cached unread count of ``member_id`` now and again when the current
    transaction commits (so a page that re-read it in between cannot keep a stale figure).
    Call it after changing ``Notification`` rows other than through this module."""
    key = _unread_key(member_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


# --- selectors -------------------------------------------------------------------------------


def unread_count(member: AbstractBaseUser) -> int:
    """How many of ``member``'s notifications are unread (one COUNT on a partial index)."""
    return Notification.objects.filter(member=member, read_at__isnull=True).count()


def unread_count_cached(member: AbstractBaseUser) -> int:
    """:func:`unread_count` through the cache (``UNREAD_CACHE_SECONDS``): what every page's
    header shows, without a database query while the figure is cached."""
    key = _unread_key(member.pk)
    count = cache.get(key)
    if count is None:
        count = unread_count(member)
        cache.set(key, count, UNREAD_CACHE_SECONDS)
    return count


def notification_list(member: AbstractBaseUser, *, unread: bool = False) -> QuerySet[Notification]:
    """``member``'s notifications, newest first; only unread ones when ``unread``."""
    rows = Notification.objects.filter(member=member)
    if unread:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-created_at", "-id")
