"""Torrent pages: browse and search, detail, download and upload."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header

from core.errors import DomainError, NotFound
from core.views import member_required, refusal
from tracker.forms import TorrentBrowseForm, TorrentUploadForm, add_domain_error
from tracker.models import Category, TorrentStatus
from tracker.selectors import torrent_browse, torrent_visible
from tracker.services import torrents as torrent_services

PAGE_SIZE = 50
FILES_PAGE_SIZE = 100
"""Files listed per page of a torrent's detail page (``?page=``)."""


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


@member_required
def torrent_list(request: HttpRequest) -> HttpResponse:
    """Browse and search approved torrents (``q``, ``category``, ``sort``, ``page``).

    A fixed number of queries whatever the page holds: categories, the count and the page.
    """
    form = TorrentBrowseForm(request.GET, categories=list(Category.objects.all()))
    page = Paginator(torrent_browse(**form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "tracker/torrent_list.html", {"form": form, "page": page})


@member_required
def torrent_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One torrent the member may see (``torrent_visible``), with one page of its files
    (``?page=``, ``FILES_PAGE_SIZE`` a page) and its stored description HTML; 404 otherwise."""
    torrent = get_object_or_404(
        torrent_visible(viewer=request.user)
        .select_related("category", "uploader")
        .defer("metainfo"),
        pk=pk,
    )
    files = _FilesPaginator(
        torrent.files.all(), FILES_PAGE_SIZE, count=torrent.file_count
    ).get_page(request.GET.get("page"))
    context = {
        "torrent": torrent,
        "files": files,
        "is_approved": torrent.status == TorrentStatus.APPROVED,
        "is_downloadable": torrent.status in torrent_services.DOWNLOADABLE_STATUSES,
    }
    return render(request, "tracker/torrent_detail.html", context)


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
                torrent = torrent_services.torrent_upload(
                    uploader=request.user,
                    data=data["file"].read(),
                    category=data["category"],
                    name=data["name"],
                    description=data["description"],
                )
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
