"""The notifications page: the member's list, mark-read forms and the e-mail opt-in."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from core.forms import MarkReadForm, NotificationSettingsForm
from core.notifications import email_enabled, mark_read, notification_list, set_email_enabled
from core.views import form_post_only, member_required

PAGE_SIZE = 25


@member_required
def notification_list_page(request: HttpRequest) -> HttpResponse:
    """The member's notifications, newest first, 25 a page (``?page=``; ``?unread=1`` shows
    unread ones only), with the mark-read buttons and the e-mail opt-in."""
    unread_only = request.GET.get("unread") == "1"
    rows = notification_list(request.user, unread=unread_only)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    settings_form = NotificationSettingsForm(initial={"email_enabled": email_enabled(request.user)})
    context = {
        "page": page,
        "unread_only": unread_only,
        "settings_form": settings_form,
        "has_email": bool(request.user.email),
    }
    return render(request, "core/notification_list.html", context)


@member_required
@form_post_only
def notification_mark_read(request: HttpRequest) -> HttpResponse:
    """Mark one of the member's notifications read (``id``) or all (``all``); ids of other
    members' notifications change nothing. Back to the list page the form was on."""
    form = MarkReadForm(request.POST)
    target = reverse("notifications")
    if not form.is_valid():
        messages.error(request, "Nothing was marked read: the form was not understood.")
        return redirect(target)
    data = form.cleaned_data
    ids = None if data["all"] else [data["id"]]
    changed = mark_read(member=request.user, ids=ids)
    if data["all"]:
        messages.success(
            request, f"{changed} notification{'s' if changed != 1 else ''} marked read."
        )
    if data.get("page") and not data["all"]:
        target = f"{target}?page={data['page']}"
    return redirect(target)


@member_required
@form_post_only
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Save the e-mail opt-in."""
    form = NotificationSettingsForm(request.POST)
    form.is_valid()  # a boolean field: any input is valid (absent means off)
    enabled = bool(form.cleaned_data.get("email_enabled"))
    set_email_enabled(member=request.user, enabled=enabled)
    if enabled and not request.user.email:
        messages.warning(
            request, "E-mail copies are on, but your account has no e-mail address to send to."
        )
    else:
        messages.success(request, "E-mail copies are " + ("on." if enabled else "off."))
    return redirect("notifications")
