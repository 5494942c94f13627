"""The original PBTS contract endpoints and the member's migration API. Thin: validate, call
one service or selector, serialize. Chain failures answer JSON (503 while the chain is not
configured or unreachable, 409 for a refused transaction), never a 500."""

from __future__ import annotations

from typing import Any

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
    REFUSED_FIELDS,
    ContractErrorSerializer,
    ContractMigrationSerializer,
    ContractPushSerializer,
    ContractStatusSerializer,
    ContractUserSerializer,
    InitSerializer,
    MigrateSerializer,
    SignatureSerializer,
    UpdateSerializer,
    UsernameSerializer,
)
from chain.client import ChainError, TransactionPending, TransactionReverted
from chain.models import Migration, MigrationStatus, TxStatus
from chain.selectors import (
    CHAIN_NOT_CONFIGURED_MESSAGE,
    chain_config,
    contract_status_view,
    contract_user_view,
    current_reputation_address,
    member_chain_view,
    migration_view,
)
from chain.services.deploy import factory_deploy, reputation_create
from chain.services.migration import migration_challenge, migration_submit
from chain.services.push import PushResult, member_mark_for_push, members_push
from core.api.permissions import IsMemberInGoodStanding, IsModeratorInGoodStanding
from core.api.schema import DETAIL, FIELD_ERRORS
from core.audit import audit_record
from core.errors import NotFound
from tracker.models import Member

JSON = OpenApiResponse(OpenApiTypes.OBJECT, description="JSON document (see docs/chain.md).")


def _failure(description: str) -> OpenApiResponse:
    return OpenApiResponse(ContractErrorSerializer, description=description)


CONTRACT_FIELD_ERRORS = _failure(
    'Invalid input, one list of messages per field, e.g. {"password_hash": ["PBTS never '
    'stores password material on chain; remove this field."], "success": false, "error": '
    '"..."}.'
)
CONTRACT_AUTH = {
    401: _failure("Not signed in (token or session)."),
    403: _failure("Not allowed (staff only, or a banned account)."),
}
CHAIN_DOWN = _failure(
    "Chain not configured, unreachable, wrong chain id, no funds or busy: "
    '{"success": false, "error": "...", "detail": "...", "status": '
    '"not_configured|rpc_down|wrong_chain|no_funds|busy|..."}.'
)
WRITE_RESPONSES = {
    400: CONTRACT_FIELD_ERRORS,
    **CONTRACT_AUTH,
    404: _failure("No such member."),
    409: _failure('The contract refused: {"detail": "reverted: ...", ...}.'),
    202: _failure(
        "A transaction was sent but not mined in time (the next push run settles it): "
        '{"success": false, "status": "pending", ...}.'
    ),
    503: CHAIN_DOWN,
}
REFUSED_NOTE = (
    "\n\nFields of the original API that this site refuses with a 400 naming them (never "
    "ignored): " + ", ".join(f"`{name}`" for name in REFUSED_FIELDS) + "."
)


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


def _messages(value: Any, field: str | None = None) -> list[str]:
    """Every message of a DRF error body, prefixed with its field."""
    if isinstance(value, dict):
        return [m for key, inner in value.items() for m in _messages(inner, str(key))]
    if isinstance(value, list):
        return [m for inner in value for m in _messages(inner, field)]
    text = str(value)
    return [f"{field}: {text}" if field and field not in ("detail", "non_field_errors") else text]


def original_failure(data: Any) -> dict[str, Any]:
    """An error body in the original's shape as well: ``success`` false and ``error`` (every
    message in one line) added to ours (``{"detail"}``, ``{"<field>": [...]}``)."""
    body: dict[str, Any] = dict(data) if isinstance(data, dict) else {"non_field_errors": data}
    if body.get("status") == "not_configured":
        error = CHAIN_NOT_CONFIGURED_MESSAGE
    else:
        error = " ".join(_messages({k: v for k, v in body.items() if k != "status"}))
    body["success"] = False
    body["error"] = error or "Request failed."
    return body


class ContractAPIView(ChainAPIView):
    """The original /contract endpoints: every error (chain, validation, permission, not
    found, ...) answers with ``success`` false and ``error`` too."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code >= 400 or isinstance(exc, ChainError):
            response.data = original_failure(response.data)
        return response


def _push_summary(result: PushResult) -> dict[str, Any]:
    """The original's keys of a push answer: ``success`` (no batch failed), ``tx_hash`` (the
    last batch's, None when nothing needed sending) and, when a batch failed, ``error``."""
    batches = result.batches
    failed = [b for b in batches if b.tx_status == TxStatus.FAILED]
    data: dict[str, Any] = {
        "success": not failed,
        "tx_hash": (batches[-1].tx_hash_hex or None) if batches else None,
        "reputation_address": current_reputation_address(),
    }
    if failed:
        data["error"] = "; ".join(f"batch {b.pk}: {b.error or b.tx_status}" for b in failed)
    return data


def _original_user(member: Member) -> dict[str, Any]:
    """``user`` and ``sizes_from`` read from the contract just now (not the short cache)."""
    view = contract_user_view(member, fresh=True)
    return {"user": view["user"], "sizes_from": view["sizes_from"]}


# --- public --------------------------------------------------------------------------------


class StatusView(ContractAPIView):
    """GET /contract/status: the chain set-up and its last known health (public)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="contract_status",
        description="The chain set-up and its last known health, with the original's keys "
        "(`success`, `reputation_address`, `referrer_address`, ...). Public.",
        responses={200: ContractStatusSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(contract_status_view())


# --- members -------------------------------------------------------------------------------


class UserView(ContractAPIView):
    """GET /contract/user/<name>: a member's published reputation (signed-in members only:
    it links a username to its on-chain record)."""

    permission_classes = [IsMemberInGoodStanding]

    @extend_schema(
        operation_id="contract_user",
        description="A member's reputation: today's fields plus the original's `success` and "
        "`user {username, downloadSize, uploadSize, ratio}` (bytes; ratio null when nothing "
        "was downloaded). Sizes come from the contract (`sizes_from: contract`), or, when it "
        "cannot be read, from the site's ledger with `success: false` and `error`. "
        "Signed-in members only.",
        responses={200: ContractUserSerializer, **CONTRACT_AUTH, 404: _failure("No such member.")},
    )
    def get(self, request: Request, name: str) -> Response:
        member = get_object_or_404(Member, username=name, is_active=True)
        return Response(contract_user_view(member))


# --- staff ---------------------------------------------------------------------------------


class InitView(ContractAPIView):
    """POST /contract/init ``{referrer?|referrer_address?, attestation?}``: deploy the
    factory when none is recorded, then create this site's Reputation contract."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_init",
        description="Staff: deploy the factory if none is recorded, then create this site's "
        "Reputation contract. Answers the status with `success`, `reputation_address`, "
        "`referrer_address` (the zero address without a referrer) and `message`." + REFUSED_NOTE,
        request=InitSerializer,
        responses={201: ContractStatusSerializer, **WRITE_RESPONSES},
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
        data = contract_status_view(staff=True)
        data["message"] = "Reputation contract initialized."
        return Response(data, status=status.HTTP_201_CREATED)


def _member(username: str) -> Member:
    member = Member.objects.filter(username=username).first()
    if member is None:
        raise NotFound("No such member.", field="username")
    return member


class RegisterView(ContractAPIView):
    """POST /contract/register ``{username}``: put a member on the contract now, with their
    verified totals (never sizes or password material from the request)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_register",
        description="Staff: put a member on the contract now with the site's verified "
        "totals. Answers the push with the original's `success`, `username`, `tx_hash`, "
        "`message` and the member's `user` as the contract now holds it." + REFUSED_NOTE,
        request=UsernameSerializer,
        responses={200: ContractPushSerializer, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = UsernameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = _member(body.validated_data["username"])
        member_mark_for_push(member=member)
        result = members_push(max_batches=1, member_ids=[member.pk])
        audit_record(actor=request.user, action="chain_member_register", target=member)
        data: dict[str, Any] = {
            "push": result.as_dict(),
            "member": member_chain_view(member, private=True, fresh=True),
            "username": member.username,
            "message": "Member registered on the Reputation contract.",
            **_push_summary(result),
            **_original_user(member),
        }
        return Response(data)


class UpdateView(ContractAPIView):
    """POST /contract/update ``{username?}``: push one member, or every changed member."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_update",
        description="Staff: push one member's verified totals (`username`), or every changed "
        "member. Answers the push with the original's `success`, `username`, `tx_hash`, "
        "`message` and, for one member, `user`, `download_size` and `upload_size` as the "
        "contract now holds them." + REFUSED_NOTE,
        request=UpdateSerializer,
        responses={200: ContractPushSerializer, **WRITE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = UpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        username = body.validated_data.get("username")
        member = None
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
        data: dict[str, Any] = {
            "push": result.as_dict(),
            "username": member.username if member else None,
            "message": "User statistics updated on the Reputation contract.",
            **_push_summary(result),
        }
        if member is not None:
            data.update(_original_user(member))
            data["download_size"] = data["user"]["downloadSize"]
            data["upload_size"] = data["user"]["uploadSize"]
        return Response(data)


class MigrateView(ContractAPIView):
    """POST /contract/migrate ``{username, migration_id?, signature?}``: staff act for a
    member, who must still sign the challenge with their own key (staff cannot import anyone's
    reputation on their own)."""

    permission_classes = [IsModeratorInGoodStanding]

    @extend_schema(
        operation_id="contract_migrate",
        description="Staff, for a member: without `migration_id` and `signature` a challenge "
        "is issued (201, `message` is the hex the member signs with their BLS key); with both, "
        "the member's signature is submitted (202). Answers with the original's `success`, "
        "`username` and `tx_hash`." + REFUSED_NOTE,
        request=MigrateSerializer,
        responses={
            **WRITE_RESPONSES,
            201: ContractMigrationSerializer,
            202: ContractMigrationSerializer,  # sending is queued: never "pending" here
        },
    )
    def post(self, request: Request) -> Response:
        body = MigrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member = _member(body.validated_data["username"])
        if "signature" not in body.validated_data:
            migration = migration_challenge(member=member, requested_by=request.user)
            return Response(_original_migration(migration, member), status=status.HTTP_201_CREATED)
        migration = migration_submit(
            member=member,
            migration_id=body.validated_data["migration_id"],
            signature=body.validated_data["signature"],
        )
        audit_record(actor=request.user, action="chain_migration_submit", target=migration)
        migration.refresh_from_db()
        return Response(_original_migration(migration, member), status=status.HTTP_202_ACCEPTED)


def _original_migration(migration: Migration, member: Member) -> dict[str, Any]:
    """:func:`migration_view` plus the original's ``success`` (the migration did not fail),
    ``username`` and ``reputation_address``."""
    data = migration_view(migration)
    data["success"] = migration.status != MigrationStatus.FAILED
    data["username"] = member.username
    data["reputation_address"] = current_reputation_address()
    return data


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
