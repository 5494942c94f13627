"""Torrent pages: browse and search, detail (peers, snatches, staff history), download,
upload and tags."""

from __future__ import annotations

import logging

import redis
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header

from core.errors import DomainError, NotFound
from core.models import AuditLog
from core.views import form_post_only, member_required, refusal
from tracker.filters import SORT_COLUMNS, SORT_LABELS, TorrentFilter
from tracker.forms import TorrentTagsForm, TorrentUploadForm, add_domain_error
from tracker.models import Bookmark, Category, TorrentHistory, TorrentStatus
from tracker.peers import torrent_peer_rows
from tracker.selectors import torrent_visible
from tracker.services import torrents as torrent_services
from tracker.services.browse import torrent_tags_set

log = logging.getLogger(__name__)

PAGE_SIZE = 50
FILES_PAGE_SIZE = 100
"""Files listed per page of a torrent's detail page (``?page=``)."""
PEERS_PAGE_SIZE = 50
"""Peers, snatches and staff history rows per page of a torrent's detail page
(``?peers=``, ``?snatches=``, ``?history=``)."""


class _FilesPaginator(Paginator):
    """A paginator that takes the row count it is given (``Torrent.file_count``) instead of
    counting the rows."""

    def __init__(self, object_list, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:
        """The number of files, as stored on the torrent."""
        return self._known_count


def valid_filters(filterset: TorrentFilter) -> dict:
    """The filter values that passed validation (an invalid field is left out: ignored)."""
    filterset.form.is_valid()
    return filterset.form.cleaned_data


def sort_columns(filterset: TorrentFilter) -> dict[str, dict[str, str]]:
    """For each sortable column: its label, the ``order`` a click on its header asks for (the
    other direction when it is the current sort, else its natural one) and its current
    direction (``""`` when it is not the sort)."""
    data = valid_filters(filterset)
    sort = data.get("sort") or "date"
    current = data.get("order") or SORT_COLUMNS[sort][1]
    columns = {}
    for key, (_, natural) in SORT_COLUMNS.items():
        is_current = key == sort
        columns[key] = {
            "label": SORT_LABELS[key],
            "next": ("desc" if current == "asc" else "asc") if is_current else natural,
            "current": current if is_current else "",
        }
    return columns


def bookmarked_ids(member, torrents) -> set[int]:
    """Ids among ``torrents`` that ``member`` bookmarked (one query)."""
    ids = [t.pk for t in torrents]
    if not ids:
        return set()
    return set(
        Bookmark.objects.filter(member=member, torrent_id__in=ids)
        .order_by()
        .values_list("torrent_id", flat=True)
    )


@member_required
def torrent_list(request: HttpRequest) -> HttpResponse:
    """Browse and search approved torrents with the filters of ``tracker.filters.
    TorrentFilter`` (a bad value shows as a form error and is ignored), sorted by any column
    in either direction, ``PAGE_SIZE`` a page.

    A fixed number of queries whatever the page holds: categories, the count, the page, its
    tags and which of its torrents the member bookmarked.
    """
    filterset = TorrentFilter(request.GET, request=request)
    rows = filterset.qs.defer("description_html").prefetch_related("tags")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    data = valid_filters(filterset)
    context = {
        "form": filterset.form,
        "categories": Category.objects.all(),
        "freeleech": data.get("freeleech"),
        "page": page,
        "columns": sort_columns(filterset),
        "bookmarked": bookmarked_ids(request.user, page.object_list),
    }
    return render(request, "tracker/torrent_list.html", context)


def _peer_rows(torrent_id: int) -> tuple[list, bool]:
    """The torrent's peers and whether they could be read (Redis down: an empty list and a
    note on the page, never an error page)."""
    try:
        return torrent_peer_rows(torrent_id=torrent_id), True
    except redis.RedisError:
        log.warning("peer list of torrent %s unavailable: Redis unreachable", torrent_id)
        return [], False


@member_required
def torrent_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One torrent the member may see (``torrent_visible``), with one page of its files
    (``?page=``, ``FILES_PAGE_SIZE`` a page), its stored description HTML, its tags, its
    current peers (``?peers=``; addresses for staff only) and snatches (``?snatches=``), and
    for staff its moderation history (``?history=``); 404 otherwise."""
    torrent = get_object_or_404(
        torrent_visible(viewer=request.user)
        .select_related("category", "uploader")
        .prefetch_related("tags")
        .defer("metainfo"),
        pk=pk,
    )
    files = _FilesPaginator(
        torrent.files.all(), FILES_PAGE_SIZE, count=torrent.file_count
    ).get_page(request.GET.get("page"))
    peers, peers_available = _peer_rows(torrent.pk)
    snatches = (
        TorrentHistory.objects.filter(torrent=torrent, completed_at__isnull=False)
        .select_related("member")
        .only("member__username", "completed_at", "seed_seconds", "uploaded", "downloaded")
        .order_by("-completed_at", "-id")
    )
    is_staff = request.user.is_moderator
    is_owner = torrent.uploader_id == request.user.pk
    context = {
        "torrent": torrent,
        "files": files,
        "is_approved": torrent.status == TorrentStatus.APPROVED,
        "is_downloadable": torrent.status in torrent_services.DOWNLOADABLE_STATUSES,
        "peers": Paginator(peers, PEERS_PAGE_SIZE).get_page(request.GET.get("peers")),
        "peers_available": peers_available,
        "snatches": Paginator(snatches, PEERS_PAGE_SIZE).get_page(request.GET.get("snatches")),
        "show_addresses": is_staff,
        "is_bookmarked": Bookmark.objects.filter(member=request.user, torrent=torrent).exists(),
        "tags_form": TorrentTagsForm(initial={"tags": " ".join(t.name for t in torrent.tags.all())})
        if is_staff or (is_owner and torrent.status != TorrentStatus.DELETED)
        else None,
    }
    if is_staff:
        history = (
            AuditLog.objects.filter(target_type="tracker.torrent", target_id=str(torrent.pk))
            .select_related("actor")
            .order_by("-created_at", "-id")
        )
        context["history"] = Paginator(history, PEERS_PAGE_SIZE).get_page(
            request.GET.get("history")
        )
    return render(request, "tracker/torrent_detail.html", context)


@member_required
@form_post_only
def torrent_tags(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace a torrent's tags (its uploader or staff, ``torrent_tags_set``); errors come back
    as a message on the torrent's page."""
    torrent = get_object_or_404(torrent_visible(viewer=request.user).defer("metainfo"), pk=pk)
    form = TorrentTagsForm(request.POST)
    if form.is_valid():
        try:
            names = torrent_tags_set(
                torrent=torrent, actor=request.user, tags=form.cleaned_data["tags"]
            )
        except DomainError as err:
            if err.status_code == 403:
                return refusal(request, title="Not allowed", message=err.message)
            messages.error(request, err.message)
        else:
            messages.success(request, f"Tags saved: {', '.join(names) or 'none'}.")
    else:
        for error in form.errors.get("tags", []):
            messages.error(request, error)
    return redirect("torrent_detail", pk=torrent.pk)


@member_required
def torrent_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The .torrent with the member's announce URL; refusals are a 403 page, not an error."""
    torrent = get_object_or_404(torrent_visible(viewer=request.user), pk=pk)
    try:
        data = torrent_services.torrent_download(torrent=torrent, member=request.user)
    except NotFound as err:
        raise Http404(err.message) from err
    except DomainError as err:
        return refusal(
            request, title="Download refused", message=err.message, status=err.status_code
        )
    response = HttpResponse(data, content_type="application/x-bittorrent")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=torrent_services.torrent_filename(torrent)
    )
    # The file carries the member's passkey: never cache it anywhere shared.
    response["Cache-Control"] = "private, no-store"
    return response


@member_required
def torrent_upload(request: HttpRequest) -> HttpResponse:
    """Upload a .torrent (``torrent_upload``); errors show on the form and write nothing."""
    if request.method == "POST":
        form = TorrentUploadForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # One transaction: tags were checked by the form, but a refusal of either
                # leaves nothing behind.
                with transaction.atomic():
                    torrent = torrent_services.torrent_upload(
                        uploader=request.user,
                        data=data["file"].read(),
                        category=data["category"],
                        name=data["name"],
                        description=data["description"],
                    )
                    if data["tags"]:
                        torrent_tags_set(torrent=torrent, actor=request.user, tags=data["tags"])
            except DomainError as err:
                add_domain_error(form, err)
            else:
                messages.success(
                    request,
                    "Torrent uploaded. Download the rewritten .torrent from this page before "
                    "seeding: the tracker marked it private and set its source, so its "
                    "info_hash changed and the file you uploaded will not work.",
                )
                if torrent.status == TorrentStatus.PENDING:
                    messages.info(request, "Staff will review it before it is listed.")
                return redirect("torrent_detail", pk=torrent.pk)
    else:
        form = TorrentUploadForm()
    return render(request, "tracker/torrent_upload.html", {"form": form})
