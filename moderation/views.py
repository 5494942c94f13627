"""Moderation pages: the upload queue, reports (members file them, staff handle them),
warnings, staff notes, class locks, the invite tree and the site statistics. Thin views: a
form validates, one service or selector does the work, a refusal becomes a form error."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from core.admin_site import is_moderator
from core.errors import DomainError, NotFound
from core.views import form_post_only, member_required, refusal
from moderation import selectors
from moderation.forms import (
    NoteForm,
    RejectForm,
    ReportCloseForm,
    ReportForm,
    RevokeForm,
    WarningForm,
)
from moderation.models import MemberWarning, ReportStatus
from moderation.services import classes, notes, reports, warnings
from tracker.forms import add_domain_error
from tracker.models import Member, Torrent, TorrentStatus
from tracker.selectors import torrent_visible
from tracker.services.torrents import torrent_moderate

PAGE_SIZE = 50


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``member_required``, then staff in good standing (``core.admin_site.is_moderator``);
    others get the 403 refusal page."""

    @member_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_moderator(request):
            return refusal(request, title="Staff only", message="This page is for staff.")
        return view(request, *args, **kwargs)

    return wrapper


def _page(request: HttpRequest, rows: Any) -> Any:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _member_url(member: Member) -> str:
    return reverse("member_detail", args=[member.username])


# --- Upload queue ---------------------------------------------------------------------------


@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    """Pending torrents, oldest first, 50 a page, with approve and reject buttons."""
    page = _page(request, selectors.upload_queue())
    return render(request, "moderation/queue.html", {"page": page, "reject_form": RejectForm()})


@staff_required
@form_post_only
def queue_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve or reject (with a reason) one pending torrent through ``torrent_moderate``."""
    torrent = get_object_or_404(Torrent.objects.defer("metainfo"), pk=pk)
    back = reverse("moderation:queue") + (
        f"?page={request.POST['page']}" if request.POST.get("page", "").isdigit() else ""
    )
    if torrent.status != TorrentStatus.PENDING:
        messages.warning(request, f"“{torrent.name}” is no longer pending ({torrent.status}).")
        return redirect(back)
    if decision == "approve":
        torrent_moderate(torrent=torrent, actor=request.user, status=TorrentStatus.APPROVED)
        messages.success(request, f"Approved “{torrent.name}”.")
        return redirect(back)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            torrent_moderate(
                torrent=torrent,
                actor=request.user,
                status=TorrentStatus.REJECTED,
                reason=form.cleaned_data["reason"],
            )
        except DomainError as err:
            add_domain_error(form, err)
        else:
            messages.success(request, f"Rejected “{torrent.name}”.")
            return redirect(back)
    page = _page(request, selectors.upload_queue())
    context = {"page": page, "reject_form": RejectForm(), "failed": torrent.pk, "failed_form": form}
    return render(request, "moderation/queue.html", context, status=400)


# --- Reports --------------------------------------------------------------------------------


def _report_page(
    request: HttpRequest, *, torrent: Torrent | None = None, member: Member | None = None
) -> HttpResponse:
    form = ReportForm(request.POST if request.method == "POST" else None)
    target_url = (
        reverse("torrent_detail", args=[torrent.pk]) if torrent is not None else _member_url(member)
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                reports.report_create(
                    reporter=request.user,
                    category=form.cleaned_data["category"],
                    text=form.cleaned_data["text"],
                    torrent=torrent,
                    member=member,
                )
            except NotFound as err:
                return refusal(request, title="Not found", message=err.message, status=404)
            except DomainError as err:
                add_domain_error(form, err)
            else:
                messages.success(request, "Thank you: staff will look at your report.")
                return redirect(target_url)
        status = 400
    context = {"form": form, "torrent": torrent, "target": member, "target_url": target_url}
    return render(request, "moderation/report_form.html", context, status=status)


@member_required
def report_torrent(request: HttpRequest, pk: int) -> HttpResponse:
    """Report a torrent the member can see (GET: the form; POST: file it)."""
    torrent = get_object_or_404(
        torrent_visible(viewer=request.user).defer("metainfo").select_related("uploader"), pk=pk
    )
    return _report_page(request, torrent=torrent)


@member_required
def report_member(request: HttpRequest, username: str) -> HttpResponse:
    """Report another member (GET: the form; POST: file it)."""
    member = get_object_or_404(Member, username=username)
    return _report_page(request, member=member)


@staff_required
def report_list(request: HttpRequest) -> HttpResponse:
    """Reports for staff, oldest first; ``?status=`` open, claimed, resolved, dismissed, all
    (default: open and claimed)."""
    wanted = request.GET.get("status", "active")
    status = "" if wanted == "all" else wanted
    page = _page(request, selectors.report_list(status=status))
    filters = [("active", "Open and claimed"), *ReportStatus.choices, ("all", "All")]
    current = wanted if wanted in dict(filters) else "active"
    return render(
        request,
        "moderation/report_list.html",
        {"page": page, "filters": filters, "current": current},
    )


@staff_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One report with the claim button and the resolve / dismiss form."""
    try:
        report = selectors.report_get(pk=pk)
    except NotFound as err:
        return refusal(request, title="Not found", message=err.message, status=404)
    form = ReportCloseForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "claim":
                reports.report_claim(report=report, actor=request.user)
                messages.success(request, "You claimed this report.")
                return redirect("moderation:report_detail", pk=pk)
            form = ReportCloseForm(request.POST)
            if form.is_valid():
                reports.report_close(
                    report=report,
                    actor=request.user,
                    status=form.cleaned_data["status"],
                    resolution=form.cleaned_data["resolution"],
                )
                messages.success(request, "Report closed; the reporter was notified.")
                return redirect("moderation:report_detail", pk=pk)
        except DomainError as err:
            if action == "claim":
                messages.error(request, err.message)
                return redirect("moderation:report_detail", pk=pk)
            add_domain_error(form, err)
        status = 400
    report = selectors.report_get(pk=pk)
    return render(
        request, "moderation/report_detail.html", {"report": report, "form": form}, status=status
    )


# --- Warnings, notes, class locks -----------------------------------------------------------


@staff_required
def member_moderate(request: HttpRequest, username: str) -> HttpResponse:
    """A member's moderation page: warnings (issue, revoke), staff notes and the class lock.
    POST ``action`` = ``warn``, ``note``, ``lock`` or ``unlock``."""
    member = get_object_or_404(Member, username=username)
    warn_form, note_form = WarningForm(), NoteForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        form: Any = None
        try:
            if action == "warn":
                form = warn_form = WarningForm(request.POST)
                if form.is_valid():
                    warnings.warning_issue(
                        member=member,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                        days=form.cleaned_data["days"],
                    )
                    messages.success(request, f"{member.username} was warned and notified.")
                    return redirect("moderation:member", username=member.username)
            elif action == "note":
                form = note_form = NoteForm(request.POST)
                if form.is_valid():
                    notes.note_add(
                        member=member, author=request.user, body=form.cleaned_data["body"]
                    )
                    messages.success(request, "Note added.")
                    return redirect("moderation:member", username=member.username)
            elif action in ("lock", "unlock"):
                if action == "lock":
                    classes.class_lock_set(member=member, actor=request.user)
                else:
                    classes.class_lock_clear(member=member, actor=request.user)
                messages.success(request, f"Class {action}ed.")
                return redirect("moderation:member", username=member.username)
            else:
                messages.error(request, "Unknown action.")
        except DomainError as err:
            if form is None:
                messages.error(request, err.message)
                return redirect("moderation:member", username=member.username)
            add_domain_error(form, err)
        status = 400
    context = {
        "member": member,
        "warnings": [
            {"warning": w, "state": selectors.warning_state(w)}
            for w in selectors.member_warnings(member=member, active_only=False)[:100]
        ],
        "notes": selectors.member_notes(member=member, viewer=request.user)[:100],
        "is_self": member.pk == request.user.pk,
        "class_lock": selectors.class_lock(member),
        "warn_form": warn_form,
        "note_form": note_form,
    }
    return render(request, "moderation/member.html", context, status=status)


@staff_required
@form_post_only
def warning_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one warning early."""
    warning = get_object_or_404(MemberWarning.objects.select_related("member"), pk=pk)
    form = RevokeForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        warnings.warning_revoke(warning=warning, actor=request.user, reason=reason)
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Warning revoked; the member was notified.")
    return redirect("moderation:member", username=warning.member.username)


# --- Invite tree ----------------------------------------------------------------------------


@staff_required
def invite_tree(request: HttpRequest, username: str) -> HttpResponse:
    """The member's inviter chain and their invitees, three levels deep, 50 direct invitees
    a page."""
    member = get_object_or_404(Member, username=username)
    page = _page(request, selectors.direct_invitees(member))
    context = {
        "member": member,
        "chain": selectors.inviter_chain(member),
        "page": page,
        "tree": selectors.invite_subtrees(list(page.object_list)),
        "depth": selectors.INVITEE_DEPTH,
    }
    return render(request, "moderation/invite_tree.html", context)


# --- Statistics -----------------------------------------------------------------------------


@member_required
def stats(request: HttpRequest) -> HttpResponse:
    """Site statistics for members (cached ``PBTS_STATS_CACHE_SECONDS``)."""
    return render(request, "moderation/stats.html", {"stats": selectors.site_stats()})
