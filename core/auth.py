"""Login rules every login form shares (the site's ``/login/`` and the admin's): a banned
member is refused with the reason staff gave, and repeated failures lock a username out from
one client address for a while (django-axes, configured in ``settings.AXES_*``).

The lockout is counted per username *and* client address (``AXES_LOCKOUT_PARAMETERS``): an
attacker guessing a member's password from one address is stopped after
``AXES_FAILURE_LIMIT`` failures for ``AXES_COOLOFF_TIME``, while the member, logging in from
their own address, is not locked out by someone else's failures.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesBackend
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from core.views import refusal


def lockout_message() -> str:
    """What a locked-out login is told: how long to wait, in minutes."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return (
        f"Too many failed logins for this account from your address: try again in {minutes} "
        "minutes, or reset your password."
    )


BANNED_MESSAGE = "Your account is banned: %(reason)s"


class LoginThrottleBackend(AxesBackend):
    """django-axes' lockout check, first in ``AUTHENTICATION_BACKENDS`` (``ModelBackend``,
    next, checks the password). Like axes' ``AxesBackend`` it is also a ``ModelBackend`` for
    everything but authenticating (``get_user``, permissions), so a view may log a member in
    with it.

    Every login over HTTP (the site's and the admin's login forms) passes the request and is
    checked. A call without a request does not come from a client (a management command, the
    test client's ``login()``): there is no address to count failures under, so it is let
    through to the next backend instead of failing with axes'
    ``AxesBackendRequestParameterRequired``.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Raise ``AxesBackendPermissionDenied`` (Django then refuses the login) when the
        username is locked out from this address; otherwise return ``None`` (the next backend
        checks the password)."""
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LoginRulesMixin:
    """For ``AuthenticationForm`` subclasses: banned members are refused with the reason, and a
    login refused by the lockout says so (instead of "wrong password")."""

    request: HttpRequest | None

    def clean(self) -> dict[str, Any]:
        """Django's check; a refusal while locked out becomes the lockout message."""
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError:
            if getattr(self.request, "axes_locked_out", False):
                raise ValidationError(lockout_message(), code="locked_out") from None
            raise

    def confirm_login_allowed(self, user: Any) -> None:
        """Refuse what the parent form refuses (inactive accounts; for the admin, non-staff)
        and banned members, with the ban reason."""
        super().confirm_login_allowed(user)  # type: ignore[misc]
        if getattr(user, "is_banned", False):
            raise ValidationError(
                BANNED_MESSAGE,
                code="banned",
                params={"reason": user.ban_reason or "no reason given"},
            )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the login page the view rendered (the form already shows the
    lockout message) with status 429; any other locked-out request gets the refusal page."""
    if isinstance(original_response, HttpResponse) and original_response.status_code == 200:
        original_response.status_code = 429
        return original_response
    return refusal(request, title="Too many failed logins", message=lockout_message(), status=429)
