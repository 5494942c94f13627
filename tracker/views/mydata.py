"""The "Delete my account" page (``member_anonymise``): password confirmation, then logout."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.errors import DomainError
from core.views import member_required
from tracker.forms import add_domain_error
from tracker.services.members import member_anonymise

DELETE_CONFIRM = (
    "I understand: my account is deleted for good; my name, e-mail address, notifications "
    "and invites are erased, my statistics stay under an anonymous name."
)


class AccountDeleteForm(forms.Form):
    """The member's current password and a confirmation box."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        required=True, label=DELETE_CONFIRM, error_messages={"required": "Tick the box to confirm."}
    )


@member_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """``GET``: the page with the form; ``POST``: delete (anonymise) the account once the
    password is right, end the session and go home. A wrong password or a refusal (the last
    superuser) comes back as a form error with status 400."""
    form = AccountDeleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                member_anonymise(member=request.user, password=form.cleaned_data["password"])
            except DomainError as err:
                add_domain_error(form, err)
            else:
                logout(request)
                messages.success(request, "Your account was deleted. Goodbye.")
                return redirect("login")
        return render(request, "tracker/account_delete.html", {"form": form}, status=400)
    return render(request, "tracker/account_delete.html", {"form": form})
