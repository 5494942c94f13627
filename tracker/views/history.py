"""History pages: a member's snatches, current seeding and leeching, uploads and hit-and-runs,
each torrent with the member's figures on it (docs/hit-and-run.md). Staff see any member's
history and forgive hit-and-runs there; members see only their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from core.errors import DomainError
from core.views import form_post_only, member_required, refusal
from tracker.models import HitAndRun, HitAndRunState, Member, Torrent
from tracker.selectors import HISTORY_SECTIONS, member_history
from tracker.services.hnr import HnrRule, hnr_forgive, hnr_terms
from tracker.services.members import may_moderate
from tracker.views.accounts import ratio_label

PAGE_SIZE = 25
OPEN_STATES = {HitAndRunState.PENDING, HitAndRunState.HIT_AND_RUN}


def duration_label(seconds: int | None) -> str:
    """Seconds as members read a seeding time: "3 d 4 h", "5 h 12 min", "7 min", "—"."""
    if not seconds:
        return "—"
    minutes = seconds // 60
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One torrent of a history page with the member's figures (bytes, labels)."""

    torrent: Torrent
    uploaded: int
    downloaded: int
    ratio: str
    seed_time: str
    completed_at: datetime | None
    deadline: datetime | None
    hnr_id: int | None
    hnr_state: str
    hnr_label: str
    can_forgive: bool


def _rows(torrents: list[Torrent], rule: HnrRule, *, can_forgive: bool) -> list[HistoryRow]:
    labels = dict(HitAndRunState.choices)
    rows = []
    for torrent in torrents:
        state = torrent.hnr_state or ""
        uploaded, downloaded = torrent.my_uploaded or 0, torrent.my_downloaded or 0
        completed = torrent.my_completed_at
        rows.append(
            HistoryRow(
                torrent=torrent,
                uploaded=uploaded,
                downloaded=downloaded,
                ratio=ratio_label(uploaded, downloaded),
                seed_time=duration_label(torrent.my_seed_seconds),
                completed_at=completed,
                deadline=rule.deadline(completed) if completed else None,
                hnr_id=torrent.hnr_id,
                hnr_state=state,
                hnr_label=labels.get(state, "—"),
                can_forgive=can_forgive and state in OPEN_STATES,
            )
        )
    return rows


def _history(request: HttpRequest, member: Member) -> HttpResponse:
    section = request.GET.get("section", "snatched")
    if section not in HISTORY_SECTIONS:
        section = "snatched"
    page = Paginator(member_history(member=member, section=section), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    is_self = member.pk == request.user.pk
    can_forgive = not is_self and may_moderate(actor=request.user, member=member)
    rule = HnrRule.from_settings()
    base = reverse("history") if is_self else reverse("member_history", args=[member.username])
    context = {
        "member": member,
        "is_self": is_self,
        "section": section,
        "sections": [
            {"key": key, "label": label, "url": f"{base}?section={key}"}
            for key, label in HISTORY_SECTIONS.items()
        ],
        "page": page,
        "rows": _rows(list(page.object_list), rule, can_forgive=can_forgive),
        "rule": rule,
        "terms": hnr_terms(),
        "forgive_form": ForgiveForm() if can_forgive else None,
    }
    return render(request, "tracker/history.html", context)


@member_required
def my_history(request: HttpRequest) -> HttpResponse:
    """The member's own history (``?section=`` one of ``HISTORY_SECTIONS``, ``?page=``)."""
    return _history(request, request.user)


@member_required
def member_history_page(request: HttpRequest, username: str) -> HttpResponse:
    """Staff: another member's history (members get a 403 refusal; their own redirects)."""
    member = get_object_or_404(Member, username=username)
    if member.pk == request.user.pk:
        return redirect("history")
    if not request.user.is_moderator:
        return refusal(
            request, title="Not allowed", message="Only staff can see another member's history."
        )
    return _history(request, member)


class ForgiveForm(forms.Form):
    """Staff forgive a hit-and-run: the reason is kept on the row and in the audit log."""

    reason = forms.CharField(max_length=2000, required=False, label="Reason")


@member_required
@form_post_only
def hnr_forgive_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: forgive one hit-and-run (``tracker.services.hnr.hnr_forgive``), then back to
    the member's hit-and-runs; a refusal (not staff, own snatch, already closed) is a 403 or
    409 page."""
    hit_and_run = get_object_or_404(HitAndRun.objects.select_related("member"), pk=pk)
    form = ForgiveForm(request.POST)
    if not form.is_valid():
        return refusal(request, title="Not forgiven", message="The reason is too long.", status=400)
    try:
        hnr_forgive(hit_and_run=hit_and_run, actor=request.user, reason=form.cleaned_data["reason"])
    except DomainError as err:
        return refusal(request, title="Not forgiven", message=err.message, status=err.status_code)
    messages.success(request, "Hit-and-run forgiven.")
    url = reverse("member_history", args=[hit_and_run.member.username])
    return redirect(f"{url}?section=hnr")
