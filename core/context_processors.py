"""Template context of the core app: the header's unread-notification count."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from core.notifications import unread_count_cached


def notifications(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """Expose ``notification_unread`` to templates: the logged-in member's unread count.

    A callable, so the count is read only on pages that show it, at most once per request,
    from the cache (``core.notifications.unread_count_cached``: no database query while
    cached); anonymous visitors get 0 without a lookup.
    """
    result: list[int] = []

    def count() -> int:
        if not result:
            user = getattr(request, "user", None)
            authenticated = user is not None and user.is_authenticated
            result.append(unread_count_cached(user) if authenticated else 0)
        return result[0]

    return {"notification_unread": count}
