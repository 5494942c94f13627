"""Login rules every login form shares (the site's ``/login/`` and the admin's): a banned
member is refused with the reason staff gave, and repeated failures lock a username out from
one client address for a while (django-axes, configured in ``settings.AXES_*``).

The lockout is counted per username *and* client address (``AXES_LOCKOUT_PARAMETERS``): an
attacker guessing a member's password from one address is stopped after
``AXES_FAILURE_LIMIT`` failures for ``AXES_COOLOFF_TIME``, while the member, logging in from
their own address, is not locked out by someone else's failures.

Two-factor authentication (:mod:`core.two_factor`, docs/two-factor.md) adds a second step to
both logins: after a correct password, a member who has it is *not* logged in; the session
remembers them for :data:`PENDING_SECONDS` (:func:`pending_login_start`) and the code page
(:func:`second_factor_login`) logs them in once a TOTP or recovery code is accepted. A wrong
code counts as a failed login for the same username and address (django-axes), so passwords
and codes share one lockout. Staff without it who must have it (``PBTS_STAFF_REQUIRE_2FA``)
are logged in and sent to set it up (:class:`TwoStepLoginMixin`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from axes.backends import AxesBackend
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login

from core.views import refusal

# core.two_factor and axes' handlers import models: this module is loaded while the app registry
# fills (core.admin_site, AUTHENTICATION_BACKENDS), so the functions below import them late.


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


# --- two-factor login step ------------------------------------------------------------------

PENDING_KEY = "pbts_2fa_pending"
# How long a correct password waits for its second factor, in seconds.
PENDING_SECONDS = 300
STAFF_ENROL_MESSAGE = (
    "Staff accounts need two-factor authentication: set it up here before using the admin "
    "or the staff API."
)


def safe_next(request: HttpRequest, url: str | None, default: str) -> str:
    """``url`` when it points at this site (Django's open-redirect check), else ``default``."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default


def enrol_url(next_url: str) -> str:
    """The page where a member sets up two-factor authentication, coming back to ``next_url``."""
    return f"{reverse('two_factor_setup')}?{urlencode({'next': next_url})}"


def pending_login_start(request: HttpRequest, *, user: Any, next_url: str) -> None:
    """Remember in the (not logged-in) session that ``user`` gave the right password, for
    :data:`PENDING_SECONDS`, with the authentication backend and where to go afterwards. The
    password's session hash is kept: a password change in between voids the step."""
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "backend": user.backend,
        "hash": user.get_session_auth_hash(),
        "next": next_url,
        "at": int(time.time()),
    }


def pending_login_clear(request: HttpRequest) -> None:
    """Forget a pending login."""
    request.session.pop(PENDING_KEY, None)


def pending_login_user(request: HttpRequest) -> Any | None:
    """The member whose password was given in this session and who still may log in (active,
    not banned, same password, within :data:`PENDING_SECONDS`), else ``None`` (and the
    pending login is forgotten)."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    user = get_user_model().objects.filter(pk=pending.get("user")).first()
    fresh = time.time() - float(pending.get("at", 0)) <= PENDING_SECONDS
    if (
        user is None
        or not fresh
        or not user.is_active
        or getattr(user, "is_banned", False)
        or not constant_time_compare(user.get_session_auth_hash(), pending.get("hash", ""))
    ):
        pending_login_clear(request)
        return None
    return user


@dataclass(frozen=True, slots=True)
class SecondFactorResult:
    """What the code step decided: ``ok`` (logged in and verified; go to ``next_url``), or a
    ``message`` to show; ``restart`` means the member must give the password again (nothing is
    pending, or the lockout started) and ``locked`` that the lockout refused it."""

    ok: bool
    message: str = ""
    next_url: str = ""
    restart: bool = False
    locked: bool = False


def second_factor_user(request: HttpRequest) -> Any | None:
    """Who the code step is for: the logged-in member whose session is not verified yet and who
    has two-factor authentication, else the pending login's member, else ``None``."""
    from core.two_factor import has_two_factor, session_is_verified

    user = request.user
    if user.is_authenticated:
        if not session_is_verified(request) and has_two_factor(user):
            return user
        return None
    return pending_login_user(request)


def second_factor_login(
    request: HttpRequest, *, code: str, default_next: str
) -> SecondFactorResult:
    """Check the code step of a login (see :func:`second_factor_user` for whose).

    The django-axes lockout of the username and client address applies first; a wrong code
    is recorded as a failed login there (``user_login_failed``), a throttled device refuses
    without checking. Accepted: a pending login is logged in with its backend, and the session
    marked verified by the device (``django_otp.login``); a recovery code is used up.
    """
    from axes.handlers.proxy import AxesProxyHandler

    from core.two_factor import check_code

    user = second_factor_user(request)
    if user is None:
        return SecondFactorResult(
            ok=False, restart=True, message="Your login timed out: give your password again."
        )
    logged_in = request.user.is_authenticated
    credentials = {settings.AXES_USERNAME_FORM_FIELD: user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        return _locked(request, logged_in)
    check = check_code(user=user, code=code)
    if check.wait_seconds:
        return SecondFactorResult(
            ok=False,
            message=f"Too many wrong codes: wait {check.wait_seconds} seconds, then enter the "
            "newest code.",
        )
    if not check.ok:
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            return _locked(request, logged_in)
        return SecondFactorResult(
            ok=False, message="That code is wrong or was already used. Enter the newest code."
        )
    if logged_in:
        next_url = default_next
    else:
        pending = request.session[PENDING_KEY]
        next_url = pending.get("next") or default_next
        login(request, user, backend=pending["backend"])
        pending_login_clear(request)
    otp_login(request, check.device)
    return SecondFactorResult(ok=True, next_url=next_url)


def _locked(request: HttpRequest, logged_in: bool) -> SecondFactorResult:
    pending_login_clear(request)
    if logged_in:
        logout(request)
    request.axes_locked_out = True  # AxesMiddleware answers 429 (lockout_response)
    return SecondFactorResult(ok=False, restart=True, locked=True, message=lockout_message())


class SecondFactorForm(forms.Form):
    """The code step of a login: a code of the authenticator app or a recovery code."""

    code = forms.CharField(
        label="Authentication code",
        max_length=32,
        strip=True,
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TwoStepLoginMixin:
    """For Django ``LoginView`` subclasses (the site's and the admin's): after a correct
    password, a member with two-factor authentication is sent to the code step
    (``second_step_url_name``) instead of being logged in; staff who must have it and do not
    are logged in and sent to set it up (their admin and staff API stay closed until then)."""

    second_step_url_name = "login_verify"
    request: HttpRequest

    def form_valid(self, form: Any) -> HttpResponse:
        """Start the code step, or log in (and send unenrolled staff to set it up)."""
        from core.two_factor import has_two_factor, staff_must_use_two_factor

        user = form.get_user()
        next_url = self.get_success_url()  # type: ignore[attr-defined]
        if has_two_factor(user):
            pending_login_start(self.request, user=user, next_url=next_url)
            return HttpResponseRedirect(reverse(self.second_step_url_name))
        response = super().form_valid(form)  # type: ignore[misc]
        if staff_must_use_two_factor(user):
            messages.warning(self.request, STAFF_ENROL_MESSAGE)
            return HttpResponseRedirect(enrol_url(next_url))
        return response
