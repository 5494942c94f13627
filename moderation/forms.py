"""Forms of the moderation pages. They validate input only; the rules live in
``moderation/services``, whose ``DomainError`` becomes a form error through
``tracker.forms.add_domain_error``."""

from __future__ import annotations

from django import forms
from django.conf import settings

from moderation.models import ReportCategory, ReportStatus
from moderation.services._common import NOTE_MAX_CHARS, REASON_MAX_CHARS


class ReportForm(forms.Form):
    """A member's report: a category and what is wrong."""

    category = forms.ChoiceField(choices=[("", "Choose…"), *ReportCategory.choices])
    text = forms.CharField(
        label="What is wrong?",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Staff read this; be specific (links, file names, what you saw).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The length rule itself is the service's (``report_create``, field ``text``).
        self.fields["text"].widget.attrs["maxlength"] = settings.PBTS_REPORT_TEXT_MAX_CHARS


class ReportCloseForm(forms.Form):
    """Resolve or dismiss a report with a note the reporter reads."""

    status = forms.ChoiceField(
        choices=[(ReportStatus.RESOLVED, "Resolved"), (ReportStatus.DISMISSED, "Dismissed")],
        widget=forms.RadioSelect,
        initial=ReportStatus.RESOLVED,
    )
    resolution = forms.CharField(
        label="Resolution note",
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The reporter is notified with this note.",
    )


class WarningForm(forms.Form):
    """Warn a member for a number of days."""

    reason = forms.CharField(
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The member reads this.",
    )
    days = forms.IntegerField(min_value=1, initial=7, help_text="How long the warning lasts.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The range rule itself is the service's (``warning_issue``, field ``days``).
        self.fields["days"].widget.attrs["max"] = settings.PBTS_WARNING_MAX_DAYS


class RevokeForm(forms.Form):
    """Revoke a warning early (the reason is optional)."""

    reason = forms.CharField(max_length=REASON_MAX_CHARS, required=False)


class NoteForm(forms.Form):
    """A staff note about a member."""

    body = forms.CharField(
        label="New staff note",
        max_length=NOTE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Staff only: never shown to the member.",
    )


class RejectForm(forms.Form):
    """Reject a pending torrent with a reason the uploader reads."""

    reason = forms.CharField(max_length=REASON_MAX_CHARS)
