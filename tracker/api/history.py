"""API v1: a member's history (docs/hit-and-run.md): ``/me/history/`` for the caller and, for
staff, ``/members/<username>/history/``. Rows come from ``tracker.selectors.member_history``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.permissions import IsModeratorInGoodStanding
from core.api.schema import FIELD_ERRORS
from tracker.api.serializers import HistoryQuerySerializer, HistoryRowSerializer
from tracker.api.views import FORBIDDEN, NOT_FOUND
from tracker.models import Member, Torrent
from tracker.selectors import member_history


class MeHistoryView(generics.ListAPIView):
    """The caller's history: snatches, current seeding and leeching, uploads, hit-and-runs."""

    serializer_class = HistoryRowSerializer
    queryset = Torrent.objects.none()  # the model, for the schema; rows come from get_queryset

    def history_member(self) -> Member:
        """Whose history: the caller."""
        return self.request.user

    def get_queryset(self) -> QuerySet[Torrent]:
        """The section asked for (``?section=``, validated) of the member's history."""
        query = HistoryQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return member_history(member=self.history_member(), section=query.validated_data["section"])

    def get_serializer_context(self) -> dict[str, Any]:
        """The history's owner (``moderation_reason`` shows on their own uploads only)."""
        if getattr(self, "swagger_fake_view", False):  # schema generation: no member
            return super().get_serializer_context()
        return {**super().get_serializer_context(), "member": self.history_member()}

    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={200: HistoryRowSerializer(many=True), 400: FIELD_ERRORS},
        summary="My history",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One section of the caller's history, paginated."""
        return super().get(request, *args, **kwargs)


class MemberHistoryView(MeHistoryView):
    """Staff: another member's history."""

    permission_classes = [IsModeratorInGoodStanding]

    def history_member(self) -> Member:
        """The member named in the URL (404 if none)."""
        if not hasattr(self, "_member"):
            self._member = get_object_or_404(Member, username=self.kwargs["username"])
        return self._member

    @extend_schema(
        parameters=[HistoryQuerySerializer],
        responses={
            200: HistoryRowSerializer(many=True),
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="A member's history (staff)",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """One section of the member's history, paginated."""
        return super().get(request, *args, **kwargs)
