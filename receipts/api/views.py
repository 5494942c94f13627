"""Receipts API views: keys, reports, attest and the development key generator.

Each view validates with a serializer, calls one service or selector and serializes the
result; ``core.api.exception_handler`` turns domain errors into JSON. They serve both
the versioned paths (``/api/v1/keys/``, ``/api/v1/reports/``) and the original PBTS paths
(``/register``, ``/report``, ``/report/<id>``, ``/attest``, ``/keygen``), always authenticated
by the member's API token (``Authorization: Token <key>``).
"""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.api.schema import DETAIL, FIELD_ERRORS
from core.errors import InvalidInput, NotPermitted
from receipts import format as receipt_format
from receipts import rules
from receipts.api.serializers import (
    AttestedSerializer,
    AttestSerializer,
    BLSKeySerializer,
    DevKeyPairSerializer,
    KeyRegisteredSerializer,
    KeyRegisterSerializer,
    ReceiptConfigSerializer,
    ReportSerializer,
    ReportSubmitSerializer,
    ReportSummarySerializer,
)
from receipts.models import Report
from receipts.selectors import member_keys, report_detail, report_visible
from receipts.services.attest import receipt_attest
from receipts.services.keys import bls_dev_keygen, bls_key_register
from receipts.services.reports import AggregateInput, SingleInput, report_submit
from receipts.site import site_realm
from tracker.models import Member

NO_STORE = {"Cache-Control": "private, no-store"}


def check_user_id(value: str | None, member: Member) -> None:
    """The optional ``user_id`` of the old API must name the caller (hole 3: the old server
    trusted it as the identity). ``None`` passes.

    Raises:
        NotPermitted: it names someone else (field ``user_id``).
    """
    if value is not None and value not in (member.username, str(member.pk)):
        raise NotPermitted(
            "user_id does not match the account of this API token; the token alone says who "
            "you are.",
            field="user_id",
        )


class NoPrivateKeysMixin:
    """Refuse, before anything is parsed into a service, a request body carrying a field that
    looks like a private key (hole 2). The value is never echoed, stored or logged."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Authenticate, check permissions and throttles, then look at the field names."""
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method in ("POST", "PUT", "PATCH"):
            found = rules.private_key_fields(request.data)
            if found:
                raise InvalidInput(rules.NEVER_SEND_PRIVATE_KEY, field=found[0])


# --- keys ------------------------------------------------------------------------------------


def _registered(request: Request) -> Response:
    form = KeyRegisterSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    check_user_id(form.validated_data.get("user_id"), request.user)
    outcome = bls_key_register(
        member=request.user,
        public_key=form.validated_data["public_key"],
        pop=form.validated_data["pop"],
    )
    key = outcome.key
    key.replaced = outcome.revoked.fingerprint if outcome.revoked else None
    code = status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK
    return Response(KeyRegisteredSerializer(key).data, status=code)


REGISTER_SCHEMA = extend_schema(
    request=KeyRegisterSerializer,
    responses={
        201: KeyRegisteredSerializer,
        200: OpenApiResponse(KeyRegisteredSerializer, description="Already your active key."),
        400: FIELD_ERRORS,
        403: FIELD_ERRORS,
        409: FIELD_ERRORS,
    },
    summary="Register my BLS public key",
    description=(
        "KeyValidate and PopVerify the key; it becomes your active key and any previous one is "
        "revoked (kept as history). A key is registered once, ever. Never send a private key."
    ),
)


class KeyListCreateView(NoPrivateKeysMixin, APIView):
    """The caller's BLS keys (GET), or register a new one (POST)."""

    throttle_scope = "credentials"

    def get_throttles(self) -> list:
        """Registrations are throttled (scope ``credentials``); listing is not."""
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses=BLSKeySerializer(many=True), summary="List my BLS keys")
    def get(self, request: Request) -> Response:
        """Every key of the caller, newest first; at most one is active."""
        return Response(BLSKeySerializer(member_keys(request.user), many=True).data)

    @REGISTER_SCHEMA
    def post(self, request: Request) -> Response:
        """Register the key."""
        return _registered(request)


class RegisterView(NoPrivateKeysMixin, APIView):
    """``POST /register``: the original path of the key registration."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @REGISTER_SCHEMA
    def post(self, request: Request) -> Response:
        """Register the key."""
        return _registered(request)


# --- reports ---------------------------------------------------------------------------------


def _submitted(request: Request) -> Response:
    form = ReportSubmitSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    check_user_id(data.get("user_id"), request.user)
    detail = report_submit(
        reporter=request.user,
        receipts=[SingleInput(**item) for item in data["receipts"]],
        aggregates=[AggregateInput(**item) for item in data["aggregates"]],
    )
    location = reverse("receipts_api:report-detail", kwargs={"pk": detail.report.pk})
    return Response(
        ReportSerializer(detail).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": location},
    )


SUBMIT_SCHEMA = extend_schema(
    request=ReportSubmitSerializer,
    responses={202: ReportSerializer, 400: FIELD_ERRORS, 403: FIELD_ERRORS},
    summary="Report receipts",
    description=(
        "Stores the report at once. Each receipt is `queued` for signature verification or "
        "`refused` with a reason; GET the report for the final result. An aggregate is refused "
        "as a whole when one of its receipts is."
    ),
)


class ReportThrottleMixin:
    """Reports are throttled per member (scope ``reports``, ``PBTS_REPORT_THROTTLE``); reads
    are not."""

    throttle_scope = "reports"

    def get_throttles(self) -> list:
        """A ``ScopedRateThrottle`` on POST only."""
        return [ScopedRateThrottle()] if self.request.method == "POST" else []


class ReportListCreateView(ReportThrottleMixin, NoPrivateKeysMixin, generics.ListAPIView):
    """The caller's reports (GET, newest first, paginated) or a new report (POST)."""

    serializer_class = ReportSummarySerializer
    queryset = Report.objects.all()  # the model, for the schema; rows come from get_queryset

    def get_queryset(self) -> QuerySet[Report]:
        """The caller's own reports."""
        return Report.objects.filter(reporter=self.request.user).order_by("-created_at", "-id")

    @extend_schema(summary="List my reports")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the caller's reports."""
        return super().get(request, *args, **kwargs)

    @SUBMIT_SCHEMA
    def post(self, request: Request) -> Response:
        """Check and store the report."""
        return _submitted(request)


class ReportCreateView(ReportThrottleMixin, NoPrivateKeysMixin, APIView):
    """``POST /report``: the original path of a report."""

    @SUBMIT_SCHEMA
    def post(self, request: Request) -> Response:
        """Check and store the report."""
        return _submitted(request)


class ReportDetailView(APIView):
    """One report with every receipt's status; only its reporter (or staff) may see it."""

    @extend_schema(
        responses={200: ReportSerializer, 404: DETAIL}, summary="A report and its receipts"
    )
    def get(self, request: Request, pk: int) -> Response:
        """Return the report."""
        report = get_object_or_404(report_visible(viewer=request.user), pk=pk)
        return Response(ReportSerializer(report_detail(report)).data)


# --- config, attest and keygen ---------------------------------------------------------------


class ReceiptConfigView(APIView):
    """The parameters receipts must follow here: the realm id and the time rules."""

    @extend_schema(responses=ReceiptConfigSerializer, summary="Receipt parameters of this site")
    def get(self, request: Request) -> Response:
        """Return the realm id, format version and limits."""
        body = {
            "realm_id": site_realm().hex(),
            "version": receipt_format.VERSION,
            "receipt_length": receipt_format.RECEIPT_LENGTH,
            "time_bucket_seconds": receipt_format.TIME_BUCKET_SECONDS,
            "window_seconds": settings.PBTS_RECEIPT_WINDOW_SECONDS,
            "future_buckets": settings.PBTS_RECEIPT_FUTURE_BUCKETS,
            "max_receipts_per_report": settings.PBTS_REPORT_MAX_RECEIPTS,
        }
        return Response(ReceiptConfigSerializer(body).data)


class AttestView(NoPrivateKeysMixin, APIView):
    """``POST /attest``: the canonical receipt bytes for the fields given, to sign on the
    client. Never send a private key: a request holding one is refused."""

    @extend_schema(
        request=AttestSerializer,
        responses={200: AttestedSerializer, 400: FIELD_ERRORS},
        summary="Build a receipt to sign",
    )
    def post(self, request: Request) -> Response:
        """Build the receipt bytes."""
        form = AttestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        out = receipt_attest(
            info_hash=data["info_hash"],
            piece_index=data["piece_index"],
            uploader_pk=data["uploader_pk"],
            downloader_pk=data["downloader_pk"],
            piece_length=data.get("piece_length"),
            unix_time=data.get("time"),
        )
        body = {
            "receipt": base64.b64encode(out.receipt).decode("ascii"),
            "receipt_id": out.receipt_id.hex(),
            "realm_id": out.realm_id.hex(),
            "piece_length": out.piece_length,
            "time_bucket": out.time_bucket,
        }
        return Response(AttestedSerializer(body).data)


class KeygenView(APIView):
    """``POST /keygen``: a demo key pair made on the server, only with ``PBTS_DEV_KEYGEN`` on
    (off by default: 404 with an explanation). Nothing is stored or logged."""

    @extend_schema(
        request=None,
        responses={200: DevKeyPairSerializer, 404: DETAIL},
        summary="Demo key pair (development only)",
    )
    def post(self, request: Request) -> Response:
        """Make and return the key pair."""
        pair = bls_dev_keygen()
        body = {
            "private_key": pair.private_key.hex(),
            "public_key": pair.public_key,
            "pop": pair.pop,
            "warning": (
                "Development demo only: this key was made on the server. Never use it for real "
                "credit; make your own with `python -m receipts.client keygen`."
            ),
        }
        return Response(DevKeyPairSerializer(body).data, headers=NO_STORE)
