"""Two-factor authentication pages (docs/two-factor.md): the code step of the site's login, and
on the security page setting up an authenticator app, new recovery codes and turning it off.

The rules and the writes are in :mod:`core.two_factor` and :mod:`core.auth`; these views only
show forms and call them. Pages that show a secret (the setup key, recovery codes) are sent
with ``Cache-Control: no-store`` so the browser keeps no copy.
"""

from __future__ import annotations

import base64
import io
from base64 import b32encode
from typing import Any

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import two_factor
from core.auth import SecondFactorForm, safe_next, second_factor_login, second_factor_user
from core.errors import DomainError
from core.views import member_required
from tracker.forms import add_domain_error


class EnrolForm(forms.Form):
    """Confirm the authenticator app with the code it shows now."""

    code = forms.CharField(
        label="Code from your app",
        max_length=16,
        help_text="The 6 digits the app shows for this site.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class IdentityForm(forms.Form):
    """Prove it is the member: a current code (app or recovery code) or the password."""

    code = forms.CharField(
        label="Authentication code",
        max_length=32,
        required=False,
        help_text="From your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )
    password = forms.CharField(
        label="Or your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        """One of the two is given and right (a code is checked with the device's throttling;
        a recovery code given here is used up)."""
        cleaned = super().clean()
        code = (cleaned.get("code") or "").strip()
        password = cleaned.get("password") or ""
        if code:
            check = two_factor.check_code(user=self.user, code=code)
            if check.wait_seconds:
                self.add_error("code", f"Too many wrong codes: wait {check.wait_seconds} seconds.")
            elif not check.ok:
                self.add_error("code", "That code is wrong or was already used.")
        elif password:
            if not self.user.check_password(password):
                self.add_error("password", "That is not your password.")
        else:
            raise forms.ValidationError("Enter a code from your app or your password.")
        return cleaned


def qr_data_uri(text: str) -> str:
    """An SVG QR code of ``text`` as a ``data:`` URI (the Content-Security-Policy allows
    ``data:`` images; no script draws it)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _spaced_secret(device: TOTPDevice) -> str:
    secret = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    return response


def _next(request: HttpRequest, default: str = "security") -> str:
    raw = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
    return safe_next(request, raw, resolve_url(default))


@never_cache
def login_verify(request: HttpRequest) -> HttpResponse:
    """The code step of the site's login (``core.auth.second_factor_login``): after a correct
    password, or for a logged-in session not verified yet. Wrong codes count as failed logins
    (django-axes lockout, then HTTP 429)."""
    if second_factor_user(request) is None:
        return redirect("home" if request.user.is_authenticated else "login")
    form = SecondFactorForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        result = second_factor_login(
            request,
            code=form.cleaned_data["code"],
            default_next=_next(request, settings.LOGIN_REDIRECT_URL),
        )
        if result.ok:
            return redirect(result.next_url)
        if result.restart and not result.locked:
            messages.error(request, result.message)
            return redirect("login")
        form.add_error("code", result.message)
    context = {"form": form, "next": _next(request, settings.LOGIN_REDIRECT_URL)}
    return render(request, "registration/login_verify.html", context)


@member_required
def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: show the key (QR code, text and ``otpauth://`` URI), then
    confirm with a code; on success the session is verified and the recovery codes shown
    once."""
    user = request.user
    next_url = _next(request)
    if two_factor.has_two_factor(user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("security")
    device = two_factor.unconfirmed_totp_device(user) or two_factor.totp_enrol_start(user=user)
    form = EnrolForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = two_factor.totp_enrol_confirm(user=user, code=form.cleaned_data["code"])
        except DomainError as err:
            add_domain_error(form, err)
        else:
            otp_login(request, device)
            messages.success(request, "Two-factor authentication is on.")
            return _codes_page(request, codes, next_url=next_url, first=True)
    context = {
        "form": form,
        "qr": qr_data_uri(device.config_url),
        "secret": _spaced_secret(device),
        "config_url": device.config_url,
        "next": next_url,
    }
    return _no_store(render(request, "tracker/two_factor_setup.html", context))


def _codes_page(
    request: HttpRequest, codes: list[str], *, next_url: str, first: bool
) -> HttpResponse:
    context = {
        "codes": [two_factor.format_recovery_code(code) for code in codes],
        "next": next_url,
        "first": first,
    }
    return _no_store(render(request, "tracker/two_factor_codes.html", context))


def _identity_page(
    request: HttpRequest, *, action: str, title: str, form: IdentityForm, danger: bool
) -> HttpResponse:
    context = {"form": form, "action": action, "title": title, "danger": danger}
    return render(request, "tracker/two_factor_confirm.html", context)


@member_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Replace the recovery codes once a current code or the password is given; the new codes
    are shown once."""
    user = request.user
    if not two_factor.has_two_factor(user):
        return redirect("security")
    form = IdentityForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            codes = two_factor.recovery_codes_regenerate(user=user)
        except DomainError as err:
            add_domain_error(form, err)
        else:
            messages.success(request, "New recovery codes: the old ones no longer work.")
            return _codes_page(request, codes, next_url=resolve_url("security"), first=False)
    return _identity_page(
        request,
        action="two_factor_recovery_codes",
        title="New recovery codes",
        form=form,
        danger=False,
    )


@member_required
def disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor authentication off once a current code or the password is given."""
    user = request.user
    if not two_factor.has_two_factor(user):
        return redirect("security")
    form = IdentityForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.two_factor_disable(user=user)
        except DomainError as err:
            add_domain_error(form, err)
        else:
            message = "Two-factor authentication is off: your password alone logs you in."
            if two_factor.staff_must_use_two_factor(user):
                message += " Staff need it for the admin and the staff API: set it up again."
            messages.success(request, message)
            return redirect("security")
    return _identity_page(
        request,
        action="two_factor_disable",
        title="Turn off two-factor authentication",
        form=form,
        danger=True,
    )
