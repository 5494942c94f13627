"""Request middleware of the whole site."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve, reverse

from core.auth import STAFF_ENROL_MESSAGE, enrol_url
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


# Pages an unverified staff session may still reach: logging in and out, the second factor's
# own pages (setting it up, the code step) and the security page that links to them. The admin
# (``core.admin_site``) and the API (``core.api.permissions``) apply the same rule themselves.
STAFF_UNVERIFIED_URL_NAMES = frozenset(
    {"login", "login_verify", "logout", "security", "two_factor_setup", "two_factor_recovery_codes"}
)
STAFF_UNVERIFIED_PREFIXES = ("/admin/", "/api/", "/static/", "/favicon")


class StaffTwoFactorMiddleware:
    """With ``PBTS_STAFF_REQUIRE_2FA``, a staff session that has not given a second factor has
    no staff powers on the site's pages either (staff-only pages, members' addresses on torrent
    pages, moderation buttons): every page but those of :data:`STAFF_UNVERIFIED_URL_NAMES`
    redirects to setting up two-factor authentication (no device yet) or to the code step
    (``login_verify``), coming back afterwards. A password alone never opens staff pages.
    Placed after ``OTPMiddleware`` and ``BannedSessionMiddleware``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Redirect an unverified staff session's page request; pass everything else on."""
        from core.two_factor import has_two_factor, session_is_verified, staff_must_use_two_factor

        user = getattr(request, "user", None)
        if (
            user is None
            or not staff_must_use_two_factor(user)
            or request.path.startswith(STAFF_UNVERIFIED_PREFIXES)
            or session_is_verified(request)
        ):
            return self.get_response(request)
        try:
            name = resolve(request.path_info).url_name
        except Resolver404:
            return self.get_response(request)
        if name in STAFF_UNVERIFIED_URL_NAMES:
            return self.get_response(request)
        next_url = request.get_full_path()
        if not has_two_factor(user):
            messages.warning(request, STAFF_ENROL_MESSAGE)
            return HttpResponseRedirect(enrol_url(next_url))
        return HttpResponseRedirect(f"{reverse('login_verify')}?{urlencode({'next': next_url})}")
