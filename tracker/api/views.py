"""API v1 views. Each one validates with a serializer, calls one service or selector, and
serializes the result. Domain errors raised by services are turned into JSON by
``core.api.exception_handler``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from core.api.permissions import IsModeratorInGoodStanding
from core.api.schema import FIELD_ERRORS
from core.errors import Conflict, NotPermitted
from tracker.api.base import StaffActionView
from tracker.api.serializers import (
    AccountDeleteSerializer,
    CategorySerializer,
    DetailSerializer,
    ForgiveSerializer,
    HitAndRunSerializer,
    MemberQuerySerializer,
    MemberSerializer,
    MeSerializer,
    PasskeyResetSerializer,
    ReasonSerializer,
    TokenResetSerializer,
    TorrentDetailSerializer,
    TorrentFileSerializer,
    TorrentModerateSerializer,
    TorrentSummarySerializer,
    TorrentUploadedSerializer,
    TorrentUploadSerializer,
)
from tracker.filters import TorrentFilter
from tracker.models import Category, HitAndRun, Member, Torrent, TorrentFile
from tracker.selectors import member_announce_url, torrent_browse, torrent_visible
from tracker.services.browse import torrent_tags_set
from tracker.services.hnr import hnr_forgive
from tracker.services.members import (
    api_token_reset,
    member_anonymise,
    member_ban,
    member_unban,
    passkey_reset,
)
from tracker.services.torrents import (
    torrent_download,
    torrent_filename,
    torrent_moderate,
    torrent_upload,
)

BITTORRENT_MEDIA_TYPE = "application/x-bittorrent"

FORBIDDEN = OpenApiResponse(DetailSerializer, description="Not allowed for this member.")
NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such object, or not visible.")


class BitTorrentRenderer(BaseRenderer):
    """Lets clients ask for ``Accept: application/x-bittorrent``; renders raw bytes only."""

    media_type = BITTORRENT_MEDIA_TYPE
    format = "torrent"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        """Return ``data`` unchanged (the view builds the response body itself)."""
        return data


# --- The calling member ----------------------------------------------------------------


class MeView(APIView):
    """The calling member's account, share figures and announce URL."""

    @extend_schema(responses=MeSerializer, summary="My account")
    def get(self, request: Request) -> Response:
        """Return the caller's account."""
        return Response(MeSerializer(request.user).data)


class PasskeyResetView(APIView):
    """Replace the caller's passkey; the old announce URL stops working at once."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @extend_schema(request=None, responses=PasskeyResetSerializer, summary="Reset my passkey")
    def post(self, request: Request) -> Response:
        """Reset the passkey and return the new one with the new announce URL."""
        member = request.user
        member.passkey = passkey_reset(member=member)
        body = {"passkey": member.passkey, "announce_url": member_announce_url(member)}
        return Response(PasskeyResetSerializer(body).data)


class TokenResetView(APIView):
    """Replace the caller's API token; the token used for this request stops working."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @extend_schema(request=None, responses=TokenResetSerializer, summary="Reset my API token")
    def post(self, request: Request) -> Response:
        """Reset the token and return the new one."""
        return Response(TokenResetSerializer({"token": api_token_reset(member=request.user)}).data)


class AccountDeleteView(APIView):
    """Delete (anonymise) the caller's account, as the "Delete my account" page does
    (``tracker.services.members.member_anonymise``, docs/my-data.md)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @extend_schema(
        request=AccountDeleteSerializer,
        responses={
            204: OpenApiResponse(description="Deleted: the token and every session stop working."),
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            409: OpenApiResponse(
                DetailSerializer, description="Refused: the caller is the last superuser."
            ),
        },
        summary="Delete my account",
    )
    def post(self, request: Request) -> Response:
        """Check the password and the confirmation, delete the account, end this session.

        A wrong password is ``400 {"password": [...]}``; ``confirm`` missing or not true is
        ``400 {"confirm": [...]}``; the last active superuser is refused with ``409``.
        """
        form = AccountDeleteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            member_anonymise(member=request.user, password=form.validated_data["password"])
        except NotPermitted as err:  # the last superuser: the account's state, not the caller
            raise Conflict(err.message, field=err.field) from err
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Categories and torrents -----------------------------------------------------------


class CategoryListView(generics.ListAPIView):
    """All categories, in display order (not paginated)."""

    serializer_class = CategorySerializer
    pagination_class = None
    queryset = Category.objects.all()

    @extend_schema(summary="List categories")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the categories."""
        return super().get(request, *args, **kwargs)


class TorrentListCreateView(generics.ListAPIView):
    """Browse approved torrents (GET) or upload a .torrent file (POST, multipart)."""

    serializer_class = TorrentSummarySerializer
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "upload"

    def get_throttles(self) -> list[BaseThrottle]:
        """Throttle uploads (scope ``upload``); browsing is not throttled."""
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return super().get_throttles()

    # Filters and sorting: tracker.filters.TorrentFilter (a bad value: 400 naming the field).
    filter_backends = [DjangoFilterBackend]
    filterset_class = TorrentFilter

    def get_queryset(self) -> QuerySet[Torrent]:
        """Approved torrents (the filter set narrows and orders them), with their tags."""
        return torrent_browse().prefetch_related("tags")

    @extend_schema(
        responses={200: TorrentSummarySerializer(many=True), 400: FIELD_ERRORS},
        summary="Browse torrents",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List approved torrents, paginated."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": TorrentUploadSerializer},
        responses={
            201: TorrentUploadedSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Already registered."),
        },
        summary="Upload a .torrent",
        description=(
            "Registers the torrent after rewriting it (private flag, source), which changes its "
            "info_hash: download the rewritten .torrent before seeding."
        ),
    )
    def post(self, request: Request) -> Response:
        """Validate the form, register the torrent, return it with instructions."""
        form = TorrentUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # Read one byte past the limit at most: the service refuses what is too large, and a
        # huge upload is never held in memory whole.
        data = form.validated_data["file"].read(settings.PBTS_MAX_TORRENT_BYTES + 1)
        with transaction.atomic():  # tags and torrent together, or nothing
            torrent = torrent_upload(
                uploader=request.user,
                data=data,
                category=form.validated_data["category"],
                name=form.validated_data["name"],
                description=form.validated_data["description"],
            )
            if form.validated_data["tags"]:
                torrent_tags_set(
                    torrent=torrent, actor=request.user, tags=form.validated_data["tags"]
                )
        body = TorrentUploadedSerializer(torrent, context={"request": request}).data
        location = reverse("api:torrent-detail", kwargs={"pk": torrent.pk})
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


class TorrentDetailView(generics.RetrieveAPIView):
    """One torrent the caller may see, with its files and rendered description."""

    serializer_class = TorrentDetailSerializer
    queryset = Torrent.objects.all()  # the model, for the schema; rows come from get_queryset

    def get_queryset(self) -> QuerySet[Torrent]:
        """Torrents visible to the caller, without the metainfo blob (the first files are
        read by the serializer, the rest are at ``files/``)."""
        return (
            torrent_visible(viewer=self.request.user)
            .select_related("category", "uploader")
            .prefetch_related("tags")
            .defer("metainfo")
        )

    @extend_schema(responses={200: TorrentDetailSerializer, 404: NOT_FOUND}, summary="Torrent")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Return the torrent."""
        return super().get(request, *args, **kwargs)


class TorrentFileListView(generics.ListAPIView):
    """The files of one torrent the caller may see, in the torrent's order, paginated."""

    serializer_class = TorrentFileSerializer
    queryset = TorrentFile.objects.all()  # the model, for the schema; rows from get_queryset

    def get_queryset(self) -> QuerySet[TorrentFile]:
        """The files of torrent ``pk`` if visible to the caller (404 otherwise)."""
        torrent = get_object_or_404(
            torrent_visible(viewer=self.request.user).only("pk"), pk=self.kwargs["pk"]
        )
        return TorrentFile.objects.filter(torrent=torrent).order_by("id")

    @extend_schema(
        responses={200: TorrentFileSerializer(many=True), 404: NOT_FOUND},
        summary="Files of a torrent",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the torrent's files (``path``, ``size`` in bytes), paginated."""
        return super().get(request, *args, **kwargs)


class TorrentDownloadView(APIView):
    """The .torrent file with the caller's personal announce URL."""

    renderer_classes = [JSONRenderer, BitTorrentRenderer]

    def finalize_response(self, request: Request, response, *args: Any, **kwargs: Any):
        """Errors are JSON even when the client asked for a .torrent."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(
            response.accepted_renderer, BitTorrentRenderer
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        responses={
            (200, BITTORRENT_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description="The .torrent file (bencoded)."
            ),
            (403, "application/json"): FORBIDDEN,
            (404, "application/json"): NOT_FOUND,
        },
        parameters=[OpenApiParameter("format", exclude=True)],
        summary="Download a .torrent",
        description="Refused (403) to banned members, members whose downloading is disabled,"
        " and for rejected or deleted torrents.",
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        """Return the torrent's bytes as an attachment."""
        torrent = get_object_or_404(torrent_visible(viewer=request.user), pk=pk)
        data = torrent_download(torrent=torrent, member=request.user)
        response = HttpResponse(data, content_type=BITTORRENT_MEDIA_TYPE)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=torrent_filename(torrent)
        )
        response["Cache-Control"] = "private, no-store"
        return response


class TorrentModerateView(StaffActionView):
    """Staff: approve, reject or delete a torrent."""

    input_serializer_class = TorrentModerateSerializer
    output_serializer_class = TorrentDetailSerializer
    schema_errors = {403: FORBIDDEN, 404: NOT_FOUND}
    schema_summary = "Moderate a torrent (staff)"
    schema_description = "Apply the moderation decision and return the torrent."

    def get_target(self, *, pk: int) -> Torrent:
        """Torrent ``pk`` (any status), without the metainfo blob; 404 if there is none."""
        return get_object_or_404(Torrent.objects.defer("metainfo"), pk=pk)

    def perform(self, target: Torrent, data: dict[str, Any]) -> Torrent:
        """``torrent_moderate`` with the posted status and reason."""
        return torrent_moderate(
            torrent=target, actor=self.request.user, status=data["status"], reason=data["reason"]
        )


# --- Staff: members --------------------------------------------------------------------


class MemberListView(generics.ListAPIView):
    """Staff: members by username, optionally filtered with ``?q=``."""

    serializer_class = MemberSerializer
    permission_classes = [IsModeratorInGoodStanding]
    queryset = Member.objects.all()  # the model, for the schema; rows come from get_queryset

    def get_queryset(self) -> QuerySet[Member]:
        """Members matching ``q`` in username or e-mail, with their ledgers."""
        query = MemberQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        qs = Member.objects.select_related("ledger").order_by("username", "id")
        q = query.validated_data["q"].strip()
        if q:
            qs = qs.filter(Q(username__icontains=q) | Q(email__icontains=q))
        return qs

    @extend_schema(
        parameters=[MemberQuerySerializer],
        responses={200: MemberSerializer(many=True), 403: FORBIDDEN},
        summary="List members (staff)",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List members, paginated."""
        return super().get(request, *args, **kwargs)


class MemberReasonActionView(StaffActionView):
    """Staff: a service applied to the member ``username`` with a required, audited reason
    (``ReasonSerializer``), answering the member (``MemberSerializer``)."""

    input_serializer_class = ReasonSerializer
    output_serializer_class = MemberSerializer
    schema_errors = {403: FORBIDDEN, 404: NOT_FOUND}

    def get_target(self, *, username: str) -> Member:
        """The member ``username``; 404 if there is none."""
        return get_object_or_404(Member, username=username)


class MemberBanView(MemberReasonActionView):
    """Staff: ban a member; the reason is required and audited."""

    schema_summary = "Ban a member (staff)"
    schema_description = "Ban the member and return them."

    def perform(self, target: Member, data: dict[str, Any]) -> Member:
        """``member_ban`` with the posted reason."""
        return member_ban(member=target, actor=self.request.user, reason=data["reason"])


class MemberUnbanView(MemberReasonActionView):
    """Staff: lift a member's ban."""

    schema_summary = "Unban a member (staff)"
    schema_description = "Unban the member and return them."

    def perform(self, target: Member, data: dict[str, Any]) -> Member:
        """``member_unban`` with the posted reason."""
        return member_unban(member=target, actor=self.request.user, reason=data["reason"])


class HitAndRunForgiveView(StaffActionView):
    """Staff: forgive one of a member's hit-and-runs, as the history page does
    (``tracker.services.hnr.hnr_forgive``, docs/hit-and-run.md)."""

    input_serializer_class = ForgiveSerializer
    output_serializer_class = HitAndRunSerializer
    schema_errors = {
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: OpenApiResponse(
            DetailSerializer,
            description="Nothing to forgive: the snatch is satisfied, exempt or forgiven.",
        ),
    }
    schema_summary = "Forgive a hit-and-run (staff)"
    schema_description = (
        "Forgive the hit-and-run ``pk`` of the member ``username`` (404 unless it is theirs);\n"
        "the service refuses the caller's own, a member of the same or a higher rank (403) and\n"
        "a row that is not open (409)."
    )

    def get_target(self, *, username: str, pk: str) -> HitAndRun:
        """Hit-and-run ``pk`` of the member ``username``; 404 unless it is theirs."""
        return get_object_or_404(
            HitAndRun.objects.select_related("member"), pk=pk, member__username=username
        )

    def perform(self, target: HitAndRun, data: dict[str, Any]) -> HitAndRun:
        """``hnr_forgive`` with the posted reason (the service refuses the caller's own, a
        member of the same or a higher rank (403) and a row that is not open (409)); the row
        is read again with what the answer shows."""
        hnr_forgive(hit_and_run=target, actor=self.request.user, reason=data["reason"])
        return HitAndRun.objects.select_related("member", "forgiven_by", "history").get(
            pk=target.pk
        )
