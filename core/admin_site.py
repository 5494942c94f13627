"""The admin site (``admin.site``): only active staff in good standing get in, and with
``PBTS_STAFF_REQUIRE_2FA`` only in a session verified by a second factor (docs/two-factor.md).

``core.apps.AdminSiteConfig`` (in ``INSTALLED_APPS`` in place of ``django.contrib.admin``)
makes :class:`PBTSAdminSite` the default site, so every app's ``@admin.register`` lands here.
This module imports no models: the admin app loads it while the app registry fills.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from core.auth import (
    STAFF_ENROL_MESSAGE,
    LoginRulesMixin,
    SecondFactorForm,
    TwoStepLoginMixin,
    enrol_url,
    safe_next,
    second_factor_login,
    second_factor_user,
)


def is_moderator(request: HttpRequest) -> bool:
    """The request comes from an active, logged-in staff member (``Member.is_moderator``) who
    is not banned."""
    user = request.user
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_moderator
        and not getattr(user, "is_banned", False)
    )


class AdminLoginForm(LoginRulesMixin, AdminAuthenticationForm):
    """The admin's login form: staff only (Django's rule), banned members refused with the
    reason, and the login lockout of :mod:`core.auth`."""


class AdminLoginView(TwoStepLoginMixin, LoginView):
    """The admin's login view: Django's, with the two-factor step of :mod:`core.auth`."""

    second_step_url_name = "admin:login_verify"


class PBTSAdminSite(admin.AdminSite):
    """The moderation site. A banned member is refused even with a live session: every admin
    view asks :meth:`has_permission` on every request (and ``core.middleware`` ends the
    session). With ``PBTS_STAFF_REQUIRE_2FA`` the session must also have passed a second
    factor: staff without two-factor authentication are sent to set it up, staff with it to
    the code step."""

    site_header = f"{settings.PBTS_SITE_NAME} moderation"
    site_title = f"{settings.PBTS_SITE_NAME} admin"
    index_title = "Moderation"
    login_form = AdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        """Active staff (or superusers) who are not banned, in a verified session when
        ``PBTS_STAFF_REQUIRE_2FA`` is on."""
        from core.two_factor import staff_two_factor_satisfied

        return is_moderator(request) and staff_two_factor_satisfied(request)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        """Django's admin URLs and the code step of the login (``admin:login_verify``)."""
        return [
            path("login/verify/", self.login_verify, name="login_verify"),
            *super().get_urls(),
        ]

    def _index(self) -> str:
        return reverse("admin:index", current_app=self.name)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        """Django's admin login with the code step; logged-in staff missing the second factor
        are sent to set it up or to the code step instead of the password form."""
        from core.two_factor import has_two_factor

        if request.method == "GET" and is_moderator(request) and not self.has_permission(request):
            next_url = safe_next(request, request.GET.get(REDIRECT_FIELD_NAME), self._index())
            if not has_two_factor(request.user):
                messages.warning(request, STAFF_ENROL_MESSAGE)
                return HttpResponseRedirect(enrol_url(next_url))
            verify = reverse("admin:login_verify", current_app=self.name)
            return HttpResponseRedirect(f"{verify}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")
        if request.method == "GET" and self.has_permission(request):
            return HttpResponseRedirect(self._index())
        context = {
            **self.each_context(request),
            "title": "Log in",
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = self._index()
        context.update(extra_context or {})
        request.current_app = self.name
        return AdminLoginView.as_view(
            extra_context=context,
            authentication_form=self.login_form,
            template_name=self.login_template or "admin/login.html",
        )(request)

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def login_verify(self, request: HttpRequest) -> HttpResponse:
        """The code step of the admin's login (and of a logged-in staff session that is not
        verified yet): a TOTP or recovery code, checked by ``core.auth.second_factor_login``."""
        next_url = safe_next(
            request,
            request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME),
            self._index(),
        )
        if second_factor_user(request) is None:
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        form = SecondFactorForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            result = second_factor_login(
                request, code=form.cleaned_data["code"], default_next=next_url
            )
            if result.ok:
                return HttpResponseRedirect(result.next_url)
            if result.restart and not result.locked:
                messages.error(request, result.message)
                return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
            form.add_error("code", result.message)
        context = {
            **self.each_context(request),
            "title": "Two-factor authentication",
            "subtitle": None,
            "form": form,
            "next": next_url,
        }
        request.current_app = self.name
        return TemplateResponse(request, "registration/admin_login_verify.html", context)
