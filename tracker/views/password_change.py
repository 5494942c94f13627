"""The password change page (``/password/change/``), throttled: a session that is not the
account holder's (a stolen cookie, a shared computer) cannot guess the old password at speed.

Django's ``PasswordChangeView`` with a form that counts every attempt per account on the
shared cache (``core.ratelimit``): at most ``ATTEMPTS`` per ``WINDOW_SECONDS``; beyond that the
form refuses, even with the right old password, until the window ends.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm

from core.ratelimit import rate_limit_hit

ATTEMPTS = 5  # password change attempts per account per window
WINDOW_SECONDS = 15 * 60
TOO_MANY = "Too many attempts to change the password: try again in 15 minutes."


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """``PasswordChangeForm`` whose ``old_password`` check is limited per account (error on
    the ``old_password`` field once over the limit)."""

    def clean_old_password(self) -> str:
        """Count the attempt, refuse it over the limit, then check the old password.

        Raises:
            forms.ValidationError: over the limit, or the old password is wrong.
        """
        if not rate_limit_hit(
            "password-change", str(self.user.pk), limit=ATTEMPTS, window_seconds=WINDOW_SECONDS
        ):
            raise forms.ValidationError(TOO_MANY, code="throttled")
        return super().clean_old_password()


class ThrottledPasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change page with :class:`ThrottledPasswordChangeForm`."""

    form_class = ThrottledPasswordChangeForm
