"""Forms of the core pages (notifications). They validate input only; rules live in the
services (``core.notifications``)."""

from __future__ import annotations

from django import forms


class NotificationSettingsForm(forms.Form):
    """The e-mail opt-in of the notifications page."""

    email_enabled = forms.BooleanField(
        required=False,
        label="Also e-mail me each notification",
        help_text="Sent to the address of your account; unticked, notifications stay on the site.",
    )


class MarkReadForm(forms.Form):
    """Mark one notification read (``id``) or all of them (``all``), from a list page."""

    id = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    all = forms.BooleanField(required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def clean(self) -> dict:
        """Exactly one of ``id`` and ``all``."""
        data = super().clean()
        if not self.errors and (data.get("id") is None) == (not data.get("all")):
            raise forms.ValidationError("Say which notification to mark read, or all of them.")
        return data
