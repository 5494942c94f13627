"""Request middleware of the whole site."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.views import refusal


class BannedSessionMiddleware:
    """A banned member's open session ends at their next request, whatever it asks for (pages,
    the admin, the API through session authentication): the session is logged out and the
    request refused with the ban reason (a JSON 403 under ``/api/``, the refusal page
    elsewhere). API tokens and passkeys are refused by the permission checks and the announce
    path. Placed after ``AuthenticationMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse and log out a banned member's session; pass everything else on."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "is_banned", False):
            message = f"Your account is banned: {user.ban_reason or 'no reason given'}"
            logout(request)
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=403)
            return refusal(request, title="Account banned", message=message)
        return self.get_response(request)
