"""API v1 views of the moderation app, under ``/api/v1/moderation/``. Each one validates with
a serializer, calls one service or selector and serializes the result; domain errors become
JSON in ``core.api.errors``."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.permissions import IsModeratorInGoodStanding
from core.errors import NotFound
from moderation import selectors
from moderation.api.serializers import (
    ModerationNoteCreateSerializer,
    ModerationNoteSerializer,
    ModerationReportCloseSerializer,
    ModerationReportCreateSerializer,
    ModerationReportListQuerySerializer,
    ModerationReportSerializer,
    ModerationSiteStatsSerializer,
    ModerationWarningCreateSerializer,
    ModerationWarningRevokeSerializer,
    ModerationWarningSerializer,
)
from moderation.models import MemberWarning, Report, StaffNote
from moderation.services import notes, reports, warnings
from tracker.api.base import (
    FIELD_ERRORS,
    ServiceActionMixin,
    StaffActionView,
    responses_schema,
)
from tracker.models import Member, Torrent

FORBIDDEN = OpenApiResponse(OpenApiTypes.OBJECT, description="Not allowed for this member.")
NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No such object.")
CONFLICT = OpenApiResponse(OpenApiTypes.OBJECT, description="Already done, or a duplicate.")


def _member(username: str) -> Member:
    member = Member.objects.filter(username=username).first()
    if member is None:
        raise NotFound("No such member.", field="member")
    return member


def _report(pk: int) -> Report:
    return selectors.report_get(pk=pk)


class ReportListCreateView(generics.ListAPIView):
    """``GET``: reports for staff, oldest first (``?status=active|all|open|claimed|resolved|
    dismissed``). ``POST``: any member in good standing files a report."""

    serializer_class = ModerationReportSerializer

    def get_permissions(self):
        """Filing is for every member; listing for staff."""
        if self.request.method == "GET":
            return [IsModeratorInGoodStanding()]
        return super().get_permissions()

    def get_queryset(self) -> QuerySet[Report]:
        """The reports of the chosen status."""
        query = ModerationReportListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data["status"]
        return selectors.report_list(status="" if wanted == "all" else wanted)

    @extend_schema(
        parameters=[ModerationReportListQuerySerializer],
        summary="List reports (staff)",
        responses={200: ModerationReportSerializer(many=True), 403: FORBIDDEN},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """List reports."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ModerationReportCreateSerializer,
        responses={
            201: ModerationReportSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        summary="Report a torrent or a member",
    )
    def post(self, request: Request) -> Response:
        """File a report (one open report per target; ``PBTS_REPORTS_PER_HOUR`` an hour)."""
        data = ModerationReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        torrent = member = None
        if "torrent" in values:
            torrent = Torrent.objects.defer("metainfo").filter(pk=values["torrent"]).first()
            if torrent is None:
                raise NotFound("This torrent does not exist.", field="torrent")
        else:
            member = _member(values["member"])
        report = reports.report_create(
            reporter=request.user,
            category=values["category"],
            text=values["text"],
            torrent=torrent,
            member=member,
        )
        return Response(ModerationReportSerializer(report).data, status=status.HTTP_201_CREATED)


class ReportDetailView(APIView):
    """One report (staff)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        responses={200: ModerationReportSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="A report",
    )
    def get(self, request: Request, pk: int) -> Response:
        """Return the report."""
        return Response(ModerationReportSerializer(_report(pk)).data)


class ReportActionView(StaffActionView):
    """Staff: a service applied to report ``pk``, answering the report."""

    output_serializer_class = ModerationReportSerializer
    schema_errors = {403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT}

    def get_target(self, *, pk: int) -> Report:
        """Report ``pk``; ``NotFound`` if there is none."""
        return _report(pk)


class ReportClaimView(ReportActionView):
    """Claim an open report (staff)."""

    schema_summary = "Claim a report (staff)"
    schema_description = "Claim it for the caller."

    def perform(self, target: Report, data: dict[str, Any]) -> Report:
        """``report_claim`` for the caller (no body)."""
        return reports.report_claim(report=target, actor=self.request.user)


class ReportResolveView(ReportActionView):
    """Resolve or dismiss a report with a note (staff); the reporter is notified."""

    input_serializer_class = ModerationReportCloseSerializer
    schema_summary = "Resolve or dismiss a report (staff)"
    schema_description = "Close it."

    def perform(self, target: Report, data: dict[str, Any]) -> Report:
        """``report_close`` with the posted status and resolution."""
        return reports.report_close(
            report=target,
            actor=self.request.user,
            status=data["status"],
            resolution=data["resolution"],
        )


class MemberListCreateView(ServiceActionMixin, generics.ListAPIView):
    """Staff: rows about the member ``username``, newest first (``GET``, paginated;
    ``serializer_class``), and ``POST`` adds one (``201`` with the new row).

    A view that sets ``list_summary`` gets the schema of its ``GET`` from its declarations as
    the ``POST`` gets its own (:class:`tracker.api.base.ServiceActionMixin`)."""

    permission_classes = [IsModeratorInGoodStanding]
    success_status = status.HTTP_201_CREATED
    schema_errors = {403: FORBIDDEN, 404: NOT_FOUND}
    list_summary: ClassVar[str] = ""
    list_description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Attach the ``GET`` schema to a view that sets ``list_summary``."""
        super().__init_subclass__(**kwargs)
        if "list_summary" not in cls.__dict__:
            return
        get = extend_schema(
            summary=cls.list_summary,
            responses=responses_schema(
                status.HTTP_200_OK, cls.serializer_class(many=True), cls.schema_errors, body=False
            ),
            description=cls.list_description,
        )
        extend_schema_view(get=get)(cls)

    def get_target(self, *, username: str) -> Member:
        """The member ``username``; ``NotFound`` if there is none."""
        return _member(username)


class MemberWarningListCreateView(MemberListCreateView):
    """A member's warnings, newest first (staff); ``POST`` warns them."""

    serializer_class = output_serializer_class = ModerationWarningSerializer
    input_serializer_class = ModerationWarningCreateSerializer
    list_summary = "A member's warnings (staff)"
    list_description = "List the warnings."
    schema_summary = "Warn a member (staff)"
    schema_description = "Issue a warning; the member is notified."

    def get_queryset(self) -> QuerySet[MemberWarning]:
        """All the member's warnings, active or not."""
        return selectors.member_warnings(member=_member(self.kwargs["username"]), active_only=False)

    def perform(self, target: Member, data: dict[str, Any]) -> MemberWarning:
        """``warning_issue`` with the posted reason and days."""
        return warnings.warning_issue(
            member=target, actor=self.request.user, reason=data["reason"], days=data["days"]
        )


class WarningRevokeView(StaffActionView):
    """Revoke a warning early (staff)."""

    input_serializer_class = ModerationWarningRevokeSerializer
    output_serializer_class = ModerationWarningSerializer
    schema_errors = {403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT}
    schema_summary = "Revoke a warning (staff)"
    schema_description = "Revoke it; the member is notified."

    def get_target(self, *, pk: int) -> MemberWarning:
        """Warning ``pk``; ``NotFound`` if there is none."""
        warning = MemberWarning.objects.filter(pk=pk).first()
        if warning is None:
            raise NotFound("No such warning.")
        return warning

    def perform(self, target: MemberWarning, data: dict[str, Any]) -> MemberWarning:
        """``warning_revoke`` with the posted reason (may be empty)."""
        return warnings.warning_revoke(
            warning=target, actor=self.request.user, reason=data.get("reason", "")
        )


class MemberNoteListCreateView(MemberListCreateView):
    """Staff notes about a member, newest first (staff; never the member's own); ``POST``
    adds one."""

    serializer_class = output_serializer_class = ModerationNoteSerializer
    input_serializer_class = ModerationNoteCreateSerializer
    list_summary = "Staff notes about a member (staff)"
    list_description = "List the notes."
    schema_summary = "Add a staff note (staff)"
    schema_description = "Add a note."

    def get_queryset(self) -> QuerySet[StaffNote]:
        """The notes the caller may read."""
        member = _member(self.kwargs["username"])
        return selectors.member_notes(member=member, viewer=self.request.user)

    def perform(self, target: Member, data: dict[str, Any]) -> StaffNote:
        """``note_add`` by the caller with the posted body."""
        return notes.note_add(member=target, author=self.request.user, body=data["body"])


class SiteStatsView(APIView):
    """The site statistics (members), cached ``PBTS_STATS_CACHE_SECONDS``."""

    @extend_schema(responses=ModerationSiteStatsSerializer, summary="Site statistics")
    def get(self, request: Request) -> Response:
        """Return the figures."""
        return Response(ModerationSiteStatsSerializer(selectors.site_stats()).data)
