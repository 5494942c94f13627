"""API v1 views of the moderation app, under ``/api/v1/moderation/``. Each one validates with
a serializer, calls one service or selector and serializes the result; domain errors become
JSON in ``core.api.errors``."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
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
from tracker.models import Member, Torrent

FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid input: {"<field>": ["message", ...]}.'
)
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


class ReportClaimView(APIView):
    """Claim an open report (staff)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        request=None,
        responses={200: ModerationReportSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
        summary="Claim a report (staff)",
    )
    def post(self, request: Request, pk: int) -> Response:
        """Claim it for the caller."""
        report = reports.report_claim(report=_report(pk), actor=request.user)
        return Response(ModerationReportSerializer(report).data)


class ReportResolveView(APIView):
    """Resolve or dismiss a report with a note (staff); the reporter is notified."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        request=ModerationReportCloseSerializer,
        responses={
            200: ModerationReportSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        summary="Resolve or dismiss a report (staff)",
    )
    def post(self, request: Request, pk: int) -> Response:
        """Close it."""
        data = ModerationReportCloseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = reports.report_close(
            report=_report(pk),
            actor=request.user,
            status=data.validated_data["status"],
            resolution=data.validated_data["resolution"],
        )
        return Response(ModerationReportSerializer(report).data)


class MemberWarningListCreateView(generics.ListAPIView):
    """A member's warnings, newest first (staff); ``POST`` warns them."""

    permission_classes = [IsModeratorInGoodStanding]
    serializer_class = ModerationWarningSerializer

    def get_queryset(self) -> QuerySet[MemberWarning]:
        """All the member's warnings, active or not."""
        return selectors.member_warnings(member=_member(self.kwargs["username"]), active_only=False)

    @extend_schema(
        summary="A member's warnings (staff)",
        responses={200: ModerationWarningSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """List the warnings."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ModerationWarningCreateSerializer,
        responses={
            201: ModerationWarningSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="Warn a member (staff)",
    )
    def post(self, request: Request, username: str) -> Response:
        """Issue a warning; the member is notified."""
        data = ModerationWarningCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        warning = warnings.warning_issue(
            member=_member(username),
            actor=request.user,
            reason=data.validated_data["reason"],
            days=data.validated_data["days"],
        )
        return Response(ModerationWarningSerializer(warning).data, status=status.HTTP_201_CREATED)


class WarningRevokeView(APIView):
    """Revoke a warning early (staff)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        request=ModerationWarningRevokeSerializer,
        responses={
            200: ModerationWarningSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        summary="Revoke a warning (staff)",
    )
    def post(self, request: Request, pk: int) -> Response:
        """Revoke it; the member is notified."""
        data = ModerationWarningRevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        warning = MemberWarning.objects.filter(pk=pk).first()
        if warning is None:
            raise NotFound("No such warning.")
        warning = warnings.warning_revoke(
            warning=warning, actor=request.user, reason=data.validated_data.get("reason", "")
        )
        return Response(ModerationWarningSerializer(warning).data)


class MemberNoteListCreateView(generics.ListAPIView):
    """Staff notes about a member, newest first (staff; never the member's own); ``POST``
    adds one."""

    permission_classes = [IsModeratorInGoodStanding]
    serializer_class = ModerationNoteSerializer

    def get_queryset(self) -> QuerySet[StaffNote]:
        """The notes the caller may read."""
        member = _member(self.kwargs["username"])
        return selectors.member_notes(member=member, viewer=self.request.user)

    @extend_schema(
        summary="Staff notes about a member (staff)",
        responses={200: ModerationNoteSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """List the notes."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ModerationNoteCreateSerializer,
        responses={
            201: ModerationNoteSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="Add a staff note (staff)",
    )
    def post(self, request: Request, username: str) -> Response:
        """Add a note."""
        data = ModerationNoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = notes.note_add(
            member=_member(username), author=request.user, body=data.validated_data["body"]
        )
        return Response(ModerationNoteSerializer(note).data, status=status.HTTP_201_CREATED)


class SiteStatsView(APIView):
    """The site statistics (members), cached ``PBTS_STATS_CACHE_SECONDS``."""

    @extend_schema(responses=ModerationSiteStatsSerializer, summary="Site statistics")
    def get(self, request: Request) -> Response:
        """Return the figures."""
        return Response(ModerationSiteStatsSerializer(selectors.site_stats()).data)
