"""The password-reset request page, rate limited: it sends mail to members, so neither one
client nor one account name may make it send more than ``PBTS_PASSWORD_RESET_PER_HOUR``
requests an hour (``core.ratelimit``). Logins themselves are limited by django-axes."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from core.http import client_ip
from core.ratelimit import rate_limit_hit
from tracker.forms import MemberPasswordResetForm

HOUR = 3600


def password_reset_allowed(*, address: str, name: str) -> bool:
    """Count a reset request from client ``address`` for the account ``name`` (what was typed,
    case-insensitive) and say whether both are within ``PBTS_PASSWORD_RESET_PER_HOUR``.

    Both counts are kept whether or not such an account exists, so the limit reveals nothing
    about accounts."""
    limit = settings.PBTS_PASSWORD_RESET_PER_HOUR
    by_address = rate_limit_hit("reset-ip", address, limit=limit, window_seconds=HOUR)
    by_name = rate_limit_hit(
        "reset-name", name.strip().casefold(), limit=limit, window_seconds=HOUR
    )
    return by_address and by_name


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view with :class:`~tracker.forms.MemberPasswordResetForm`; a request over
    the limit sends no mail and shows the form again with the reason (HTTP 429)."""

    form_class = MemberPasswordResetForm
    extra_email_context = {"site_name": settings.PBTS_SITE_NAME}

    def form_valid(self, form: MemberPasswordResetForm) -> HttpResponse:
        """Send the mail only within the limits."""
        if not password_reset_allowed(
            address=client_ip(self.request), name=form.cleaned_data["email"]
        ):
            form.add_error(
                None, "Too many password reset requests: try again in an hour, or ask staff."
            )
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return super().form_valid(form)
