"""The original PBTS contract endpoints and the member's migration API. Thin: validate, call
one service or selector, serialize. Chain failures answer JSON (503 while the chain is not
configured or unreachable, 409 for a refused transaction), never a 500."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from chain.api.serializers import (
    InitSerializer,
    MigrateSerializer,
    SignatureSerializer,
    UpdateSerializer,
    UsernameSerializer,
)
from chain.client import ChainError, TransactionPending, TransactionReverted
from chain.models import Migration
from chain.selectors import chain_config, chain_overview, member_chain_view, migration_view
from chain.services.deploy import factory_deploy, reputation_create
from chain.services.migration import migration_challenge, migration_submit
from chain.services.push import member_mark_for_push, members_push
from core.api.permissions import IsMemberInGoodStanding, IsModeratorInGoodStanding
from core.audit import audit_record
from core.errors import NotFound
from tracker.models import Member

JSON = OpenApiResponse(OpenApiTypes.OBJECT, description="JSON document (see docs/chain.md).")
FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid input: {"<field>": ["message", ...]}.'
)
DETAIL = OpenApiResponse(OpenApiTypes.OBJECT, description='{"detail": "message"}.')
CHAIN_DOWN = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Chain not configured, unreachable, wrong chain id, no funds or busy: "
    '{"detail": "...", "status": "not_configured|rpc_down|wrong_chain|no_funds|busy|..."}.',
)
REVERTED = OpenApiResponse(
    OpenApiTypes.OBJECT, description='The contract refused: {"detail": "reverted: ..."}.'
)
WRITE_RESPONSES = {400: FIELD_ERRORS, 404: DETAIL, 409: REVERTED, 503: CHAIN_DOWN}


def chain_error_response(exc: ChainError) -> Response:
    """JSON for a chain failure: ``{"detail", "status"}`` with 409 (refused by the contract),
    202 (sent, receipt pending) or 503 (not configured, unreachable, wrong chain, no funds,
    busy)."""
    if isinstance(exc, TransactionReverted):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, TransactionPending):
        code = status.HTTP_202_ACCEPTED
    else:
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    detail = "not configured" if exc.status == "not_configured" else exc.message
    return Response({"detail": detail, "status": exc.status}, status=code)


class ChainAPIView(APIView):
    """Maps :class:`ChainError` to JSON; domain errors go through the project's handler."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ChainError):
            return chain_error_response(exc)
        return super().handle_exception(exc)


# --- public --------------------------------------------------------------------------------


class StatusView(ChainAPIView):
    """GET /contract/status: the chain set-up and its last known health (public)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(operation_id="contract_status", responses={200: JSON})
    def get(self, request: Request) -> Response:
        return Response(chain_overview())


class UserView(ChainAPIView):
    """GET /contract/user/<name>: a member's published reputation (public)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(operation_id="contract_user", responses={200: JSON, 404: DETAIL})
    def get(self, request: Request, name: str) -> Response:
        member = get_object_or_404(Member, username=name, is_active=True)
        return Response(member_chain_view(member))


# --- staff ---------------------------------------------------------------------------------


class InitView(ChainAPIView):
    """POST /contract/init ``{referrer?, attestation?}``: deploy the factory when none is
    recorded, then create this site's Reputation contract."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_init",
        request=InitSerializer,
        responses={201: JSON, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = InitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not chain_config().factory_address:
            factory_deploy(actor=request.user)
        reputation_create(
            referrer=body.validated_data.get("referrer", ""),
            attestation=body.validated_data.get("attestation", b""),
            actor=request.user,
        )
        return Response(chain_overview(staff=True), status=status.HTTP_201_CREATED)


def _member(username: str) -> Member:
    member = Member.objects.filter(username=username).first()
    if member is None:
        raise NotFound("No such member.", field="username")
    return member


class RegisterView(ChainAPIView):
    """POST /contract/register ``{username}``: put a member on the contract now."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_register",
        request=UsernameSerializer,
        responses={200: JSON, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = UsernameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = _member(body.validated_data["username"])
        member_mark_for_push(member=member)
        result = members_push(max_batches=1, member_ids=[member.pk])
        audit_record(actor=request.user, action="chain_member_register", target=member)
        return Response(
            {"push": result.as_dict(), "member": member_chain_view(member, private=True)}
        )


class UpdateView(ChainAPIView):
    """POST /contract/update ``{username?}``: push one member, or every changed member."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_update",
        request=UpdateSerializer,
        responses={200: JSON, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = UpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        username = body.validated_data.get("username")
        if username:
            member = _member(username)
            member_mark_for_push(member=member)
            result = members_push(max_batches=1, member_ids=[member.pk])
        else:
            result = members_push()
        audit_record(
            actor=request.user,
            action="chain_push",
            target=chain_config(),
            new={"username": username or "*", "pushed": result.pushed},
        )
        return Response({"push": result.as_dict()})


class MigrateView(ChainAPIView):
    """POST /contract/migrate ``{username, migration_id?, signature?}``: staff act for a
    member, who must still sign the challenge with their own key (staff cannot import anyone's
    reputation on their own)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_migrate",
        request=MigrateSerializer,
        responses={201: JSON, 202: JSON, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = MigrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = _member(body.validated_data["username"])
        if "signature" not in body.validated_data:
            migration = migration_challenge(member=member, requested_by=request.user)
            return Response(migration_view(migration), status=status.HTTP_201_CREATED)
        migration = migration_submit(
            member=member,
            migration_id=body.validated_data["migration_id"],
            signature=body.validated_data["signature"],
        )
        audit_record(actor=request.user, action="chain_migration_submit", target=migration)
        migration.refresh_from_db()
        return Response(migration_view(migration), status=status.HTTP_202_ACCEPTED)


# --- the member's own migration (API token) --------------------------------------------------


class MyChainView(ChainAPIView):
    """GET /api/v1/chain/me: the caller's published reputation and migration state."""

    permission_classes = [IsMemberInGoodStanding]

    @extend_schema(operation_id="chain_me", responses={200: JSON})
    def get(self, request: Request) -> Response:
        return Response(member_chain_view(request.user, private=True))


class MigrationCreateView(ChainAPIView):
    """POST /api/v1/chain/migrations: ask for a challenge to import one's reputation."""

    permission_classes = [IsMemberInGoodStanding]

    @extend_schema(
        operation_id="chain_migration_create",
        request=None,
        responses={201: JSON, 400: DETAIL, 409: DETAIL},
    )
    def post(self, request: Request) -> Response:
        migration = migration_challenge(member=request.user)
        return Response(migration_view(migration), status=status.HTTP_201_CREATED)


class MigrationDetailView(ChainAPIView):
    """GET /api/v1/chain/migrations/<id>: one of the caller's migrations."""

    permission_classes = [IsMemberInGoodStanding]

    @extend_schema(operation_id="chain_migration_detail", responses={200: JSON, 404: DETAIL})
    def get(self, request: Request, pk: int) -> Response:
        migration = get_object_or_404(Migration, pk=pk, member=request.user)
        return Response(migration_view(migration))


class MigrationSignView(ChainAPIView):
    """POST /api/v1/chain/migrations/<id>/signature ``{signature}``: answer the challenge."""

    permission_classes = [IsMemberInGoodStanding]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @extend_schema(
        operation_id="chain_migration_sign",
        request=SignatureSerializer,
        responses={202: JSON, 400: FIELD_ERRORS, 404: DETAIL},
    )
    def post(self, request: Request, pk: int) -> Response:
        body = SignatureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        migration = migration_submit(
            member=request.user, migration_id=pk, signature=body.validated_data["signature"]
        )
        migration.refresh_from_db()
        return Response(migration_view(migration), status=status.HTTP_202_ACCEPTED)
