"""Forms of the member pages. They validate input only; the rules live in ``tracker/services``.

A service's :class:`~core.errors.DomainError` becomes a form error through
:func:`add_domain_error`, on the field it names when the form has that field.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.utils.text import normalize_newlines

from core.auth import LoginRulesMixin
from core.errors import DomainError
from tracker.models import Category, Member
from tracker.services.browse import tags_parse


def add_domain_error(form: forms.Form, err: DomainError) -> None:
    """Show a service's refusal on ``form``: on ``err.field`` if the form has it, else on top."""
    field = err.field if err.field in form.fields else None
    form.add_error(field, err.message)


class LoginForm(LoginRulesMixin, AuthenticationForm):
    """The login form; banned members are refused with the reason staff gave, and repeated
    failures lock the username out from the client's address for a while (``core.auth``)."""


class MemberPasswordResetForm(PasswordResetForm):
    """Password reset by username or e-mail address.

    Unlike Django's form, which mails only accounts that already have a usable password, this
    one mails every active, unbanned member found, so that a member made by ``createmember``
    (who has no password yet) can choose one. The page says the same thing whether or not an
    account was found (no account enumeration).
    """

    email = forms.CharField(
        label="Username or e-mail address",
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )

    def get_users(self, email: str) -> Iterable[Member]:
        """Active, unbanned members whose username or e-mail address is ``email`` (any case)
        and who have an e-mail address to send to."""
        value = email.strip()
        if not value:
            return []
        by_name = Member.objects.filter(username__iexact=value)
        by_email = Member.objects.filter(email__iexact=value)
        return [
            member
            for member in (by_name | by_email).distinct()
            if member.is_active and not member.is_banned and member.email
        ]


class RegisterForm(forms.Form):
    """Invite-only registration. Field names match the ``field`` of ``member_register``'s
    errors (``invite_code``, ``username``, ``password``) so they land on the right input."""

    invite_code = forms.CharField(max_length=64, strip=True)
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @/./+/-/_ only; 150 characters at most.",
    )
    email = forms.EmailField()
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password_confirm = forms.CharField(
        label="Password (again)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict:
        """Both passwords must match."""
        data = super().clean()
        if (
            data.get("password")
            and data.get("password_confirm")
            and data["password"] != data["password_confirm"]
        ):
            self.add_error("password_confirm", "The two passwords differ.")
        return data


_REFUSE_IMAGES = settings.PBTS_REMOTE_IMAGES != "allow"


class MarkdownField(forms.CharField):
    """Markdown text: line breaks become ``\\n`` before ``max_length`` is checked, so a line
    break counts one character here as in the browser's ``maxlength`` (browsers send CRLF)."""

    def to_python(self, value: object) -> str:
        """The stripped text with ``\\n`` line breaks."""
        return normalize_newlines(super().to_python(value))


class TagsField(forms.CharField):
    """Tags as one text input (comma- or space-separated); cleans to the normalised list
    (``tracker.services.browse.tags_parse``: lower-case slugs, at most ``PBTS_MAX_TAGS``)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault(
            "help_text",
            f"Up to {settings.PBTS_MAX_TAGS} tags, separated by commas or spaces: letters, "
            "digits and dashes (stored in lower case).",
        )
        super().__init__(**kwargs)

    def clean(self, value: object) -> list[str]:  # type: ignore[override]
        """The normalised tags; a bad one, or too many, is a validation error."""
        text = super().clean(value)
        try:
            return tags_parse(text)
        except DomainError as err:
            raise ValidationError(err.message) from err


class TorrentTagsForm(forms.Form):
    """Edit a torrent's tags (uploader or staff)."""

    tags = TagsField()


class TorrentUploadForm(forms.Form):
    """Upload a .torrent file. Parsing, the rewrite and every rule are the service's."""

    file = forms.FileField(
        label="Torrent file",
        widget=forms.ClearableFileInput(attrs={"accept": ".torrent,application/x-bittorrent"}),
    )
    name = forms.CharField(
        required=False,
        max_length=255,
        help_text="Leave empty to use the name inside the .torrent.",
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.all(), empty_label="Choose a category"
    )
    description = MarkdownField(
        required=False,
        max_length=settings.PBTS_DESCRIPTION_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=(
            f"Markdown, at most {settings.PBTS_DESCRIPTION_MAX_CHARS:,} characters. "
            "Raw HTML is sanitized."
            + (" Images from other sites show as their text." if _REFUSE_IMAGES else "")
        ),
    )

    tags = TagsField()

    def clean_file(self):
        """Refuse files over ``PBTS_MAX_TORRENT_BYTES`` before reading them into memory."""
        upload = self.cleaned_data["file"]
        limit = settings.PBTS_MAX_TORRENT_BYTES
        if upload.size > limit:
            raise ValidationError(f"The torrent file is too large (more than {limit} bytes).")
        return upload


class InviteCreateForm(forms.Form):
    """Create an invite; the e-mail address is a note for the inviter, nothing is sent."""

    email = forms.EmailField(
        required=False, help_text="Optional: who the invite is for (for your records)."
    )


class ConfirmForm(forms.Form):
    """A POST that must be confirmed by ticking a box (passkey and API token resets)."""

    confirm = forms.BooleanField(
        required=True,
        error_messages={"required": "Tick the box to confirm."},
    )

    def __init__(self, *args, label: str = "I understand", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm"].label = label
