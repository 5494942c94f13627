"""The "Export my data" page: what the export holds, and the download (``core.mydata``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header

from core.mydata import member_export_json, section_names
from core.views import member_required


@member_required
def mydata_export(request: HttpRequest) -> HttpResponse:
    """``GET /profile/export/``: the page with the download button; ``?download=1`` returns
    the member's export as a JSON attachment (``pbts-my-data-<date>.json``)."""
    if request.GET.get("download") == "1":
        response = HttpResponse(
            member_export_json(request.user), content_type="application/json; charset=utf-8"
        )
        filename = f"pbts-my-data-{timezone.now():%Y-%m-%d}.json"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "core/mydata_export.html", {"sections": section_names()})
