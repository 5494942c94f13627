"""Helpers shared by every app's page views: the member-only decorator, the form-only
decorator and the refusal page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like ``login_required``, and a banned member's open session is ended at once.

    Anonymous visitors are sent to the login page (``?next=`` kept). A member banned while
    logged in is logged out and gets the 403 refusal page with the ban reason.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if user.is_banned:
            reason = user.ban_reason or "no reason given"
            logout(request)
            return refusal(
                request, title="Account banned", message=f"Your account is banned: {reason}"
            )
        return view(request, *args, **kwargs)

    return wrapper


def form_post_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like ``require_POST`` for endpoints that take a page's form, but a browser that opens
    the address (GET, a bookmark, a reload) gets a readable 405 page with ``Allow: POST``
    (RFC 9110 15.5.6) instead of an empty one."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            response = refusal(
                request,
                title="Nothing to see here",
                message="This address takes a form that a page sends; open the page instead.",
                status=405,
            )
            response["Allow"] = "POST"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def refusal(request: HttpRequest, *, title: str, message: str, status: int = 403) -> HttpResponse:
    """Render the plain error page (``core/refusal.html``) with ``status``."""
    return render(request, "core/refusal.html", {"title": title, "message": message}, status=status)
