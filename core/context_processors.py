"""Template context of the core app: the header's unread-notification count."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from core.notifications import unread_count


def notifications(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """Expose ``notification_unread`` to templates: the logged-in member's unread count.

    A callable, so the one ``COUNT`` query (on a partial index) runs only on pages that show
    it, at most once per request; anonymous visitors get 0 without a query.
    """
    result: list[int] = []

    def count() -> int:
        if not result:
            user = getattr(request, "user", None)
            authenticated = user is not None and user.is_authenticated
            result.append(unread_count(user) if authenticated else 0)
        return result[0]

    return {"notification_unread": count}
