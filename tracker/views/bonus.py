"""The bonus page (``/bonus/``): balance, how points are earned, the store, active freeleech
tokens and recent transactions (docs/bonus.md). Purchases are POSTs of :class:`SpendForm` to
the same page; the writes are ``tracker.services.bonus.bonus_store_buy``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from core.errors import DomainError
from core.views import member_required
from reputation.selectors import bonus_balance, bonus_recent
from reputation.services import MILLI
from tracker.forms import add_domain_error
from tracker.services.bonus import (
    FREELEECH,
    UPLOAD,
    bonus_active_tokens,
    bonus_formula,
    bonus_store_buy,
    bonus_store_items,
)


class SpendForm(forms.Form):
    """One purchase: the store ``item`` and, for a freeleech token, the ``torrent`` id."""

    item = forms.ChoiceField(choices=[(UPLOAD, "Upload credit"), (FREELEECH, "Freeleech token")])
    torrent = forms.IntegerField(
        required=False, min_value=1, label="Torrent id", help_text="The number in its address."
    )


@member_required
def bonus_page(request: HttpRequest) -> HttpResponse:
    """GET: the member's balance, the store and history; POST: buy one item."""
    member = request.user
    form = SpendForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tx = bonus_store_buy(
                    member=member,
                    item=form.cleaned_data["item"],
                    torrent_id=form.cleaned_data.get("torrent"),
                )
            except DomainError as err:
                add_domain_error(form, err)
                status = 400
            else:
                messages.success(
                    request,
                    f"Bought: {-tx.amount / MILLI:,.3f} points spent; "
                    f"{tx.balance_after / MILLI:,.3f} left.",
                )
                return redirect("bonus")
        else:
            status = 400
    initial_torrent = request.GET.get("torrent", "")
    context = {
        "balance": bonus_balance(member_id=member.pk),
        "items": bonus_store_items(),
        "form": form,
        "initial_torrent": initial_torrent if initial_torrent.isdigit() else "",
        "tokens": bonus_active_tokens(member=member),
        "transactions": bonus_recent(member_id=member.pk, limit=25),
        "formula": bonus_formula(),
        "slack_hours": settings.PBTS_BONUS_SLACK_SECONDS / 3600,
    }
    return render(request, "tracker/bonus.html", context, status=status)
