"""API v1 of bonus points (docs/bonus.md): ``GET /api/v1/bonus/`` (balance, recent
transactions, store items) and ``POST /api/v1/bonus/spend/`` (buy one item). Refusals are
400 with the field at fault: ``item`` (unknown, not enough points) or ``torrent`` (missing,
unknown or not approved, a token already active)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import FIELD_ERRORS
from reputation.models import BonusKind
from reputation.selectors import bonus_balance, bonus_recent
from reputation.services import MILLI
from tracker.services.bonus import (
    FREELEECH,
    UPLOAD,
    bonus_active_tokens,
    bonus_store_buy,
    bonus_store_items,
)

RECENT = 25


class BonusTransactionSerializer(serializers.Serializer):
    """One movement of points; ``amount`` and ``balance_after`` in points (3 decimals)."""

    kind = serializers.ChoiceField(choices=BonusKind.choices)
    amount = serializers.FloatField(help_text="Points; negative when spent.")
    balance_after = serializers.FloatField(help_text="Balance in points once applied.")
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class StoreItemSerializer(serializers.Serializer):
    """Something the store sells."""

    key = serializers.ChoiceField(choices=[UPLOAD, FREELEECH])
    name = serializers.CharField()
    points = serializers.FloatField(help_text="Cost in points.")
    needs_torrent = serializers.BooleanField(help_text="POST the torrent id with it.")
    description = serializers.CharField()


class FreeleechTokenSerializer(serializers.Serializer):
    """An active freeleech token: the member's download of the torrent counts as 0."""

    torrent = serializers.IntegerField(source="torrent_id")
    torrent_name = serializers.CharField(source="torrent.name")
    expires_at = serializers.DateTimeField()


class BonusSerializer(serializers.Serializer):
    """The caller's bonus points."""

    balance = serializers.FloatField(help_text="Points.")
    transactions = BonusTransactionSerializer(many=True, help_text="Newest first.")
    tokens = FreeleechTokenSerializer(many=True, help_text="Active freeleech tokens.")
    items = StoreItemSerializer(many=True)


class BonusSpendSerializer(serializers.Serializer):
    """A purchase: ``item`` and, for ``freeleech``, the ``torrent`` id."""

    item = serializers.ChoiceField(
        choices=[UPLOAD, FREELEECH], help_text="The store item (GET /api/v1/bonus/ lists them)."
    )
    torrent = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )


class BonusSpentSerializer(serializers.Serializer):
    """What a purchase cost and left."""

    item = serializers.CharField()
    spent = serializers.FloatField(help_text="Points.")
    balance = serializers.FloatField(help_text="Points left.")


def _tx(tx) -> dict:
    return {
        "kind": tx.kind,
        "amount": tx.amount / MILLI,
        "balance_after": tx.balance_after / MILLI,
        "reference": tx.reference,
        "created_at": tx.created_at,
    }


class BonusView(APIView):
    """The caller's balance, recent transactions, active tokens and the store's items."""

    @extend_schema(responses=BonusSerializer, summary="My bonus points")
    def get(self, request: Request) -> Response:
        """Return the caller's bonus points."""
        member = request.user
        body = {
            "balance": bonus_balance(member_id=member.pk) / MILLI,
            "transactions": [_tx(t) for t in bonus_recent(member_id=member.pk, limit=RECENT)],
            "tokens": bonus_active_tokens(member=member),
            "items": bonus_store_items(),
        }
        return Response(BonusSerializer(body).data)


class BonusSpendView(APIView):
    """Spend points on one store item."""

    @extend_schema(
        request=BonusSpendSerializer,
        responses={201: BonusSpentSerializer, 400: FIELD_ERRORS},
        summary="Spend bonus points",
    )
    def post(self, request: Request) -> Response:
        """Buy ``item`` (with ``torrent`` for a freeleech token)."""
        data = BonusSpendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tx = bonus_store_buy(
            member=request.user,
            item=data.validated_data["item"],
            torrent_id=data.validated_data.get("torrent"),
        )
        body = {
            "item": data.validated_data["item"],
            "spent": -tx.amount / MILLI,
            "balance": tx.balance_after / MILLI,
        }
        return Response(BonusSpentSerializer(body).data, status=status.HTTP_201_CREATED)
