"""The notifications API (``/api/v1/notifications/``): the caller's list and mark-read."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import FIELD_ERRORS
from core.models import Notification
from core.notifications import mark_read, notification_list, unread_count

MARK_READ_MAX_IDS = 1000


class NotificationSerializer(serializers.ModelSerializer):
    """One notification; ``url`` is site-relative or empty, ``read_at`` null while unread."""

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "body", "url", "created_at", "read_at"]
        read_only_fields = fields


class NotificationQuerySerializer(serializers.Serializer):
    """``?unread=true`` lists unread notifications only."""

    unread = serializers.BooleanField(required=False, default=False)


class MarkReadSerializer(serializers.Serializer):
    """Either ``ids`` (the caller's notification ids, up to 1000) or ``all: true``."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=MARK_READ_MAX_IDS,
    )
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Exactly one of ``ids`` and ``all: true``."""
        if ("ids" in attrs) == bool(attrs.get("all")):
            raise serializers.ValidationError({"ids": ['Give "ids" or "all": true, not both.']})
        return attrs


class MarkReadResultSerializer(serializers.Serializer):
    """How many notifications changed, and how many stay unread."""

    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


class NotificationListView(generics.ListAPIView):
    """The caller's notifications, newest first (paginated); other members' are never listed."""

    serializer_class = NotificationSerializer

    def get_queryset(self) -> QuerySet[Notification]:
        """The caller's rows, filtered by ``?unread=``."""
        query = NotificationQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return notification_list(self.request.user, unread=query.validated_data["unread"])

    @extend_schema(
        summary="List my notifications",
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Unread ones only.")],
        responses={200: NotificationSerializer(many=True), 400: FIELD_ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the caller's notifications."""
        return super().get(request, *args, **kwargs)


class NotificationMarkReadView(APIView):
    """Mark the caller's notifications read; ids of other members' notifications, unknown or
    already read ones are ignored (counted in neither figure)."""

    @extend_schema(
        request=MarkReadSerializer,
        responses={
            200: MarkReadResultSerializer,
            400: FIELD_ERRORS,
        },
        summary="Mark my notifications read",
    )
    def post(self, request: Request) -> Response:
        """Mark ``ids`` (or all) read; returns ``{"marked": n, "unread": m}``."""
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = None if body.validated_data.get("all") else body.validated_data["ids"]
        marked = mark_read(member=request.user, ids=ids)
        result = {"marked": marked, "unread": unread_count(request.user)}
        return Response(MarkReadResultSerializer(result).data)
