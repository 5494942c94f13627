"""The admin site (``admin.site``): only active staff in good standing get in.

``core.apps.AdminSiteConfig`` (in ``INSTALLED_APPS`` in place of ``django.contrib.admin``)
makes :class:`PBTSAdminSite` the default site, so every app's ``@admin.register`` lands here.
This module imports no models: the admin app loads it while the app registry fills.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest

from core.auth import LoginRulesMixin


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


class PBTSAdminSite(admin.AdminSite):
    """The moderation site. A banned member is refused even with a live session: every admin
    view asks :meth:`has_permission` on every request (and ``core.middleware`` ends the
    session)."""

    site_header = f"{settings.PBTS_SITE_NAME} moderation"
    site_title = f"{settings.PBTS_SITE_NAME} admin"
    index_title = "Moderation"
    login_form = AdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        """Active staff (or superusers) who are not banned."""
        return is_moderator(request)
