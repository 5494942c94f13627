"""``GET /api/v1/me/export/``: everything the site holds about the caller (``core.mydata``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.mydata import member_export


class MyDataExportSerializer(serializers.Serializer):
    """The export: its format name, when it was made, the member's id and one entry per
    registered section (docs/my-data.md lists them)."""

    format = serializers.CharField()
    generated_at = serializers.DateTimeField()
    member_id = serializers.IntegerField()
    sections = serializers.DictField(child=serializers.JSONField())


class MyDataExportView(APIView):
    """The caller's data export, the same JSON as the page's download."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "credentials"

    @extend_schema(responses=MyDataExportSerializer, summary="Export my data")
    def get(self, request: Request) -> Response:
        """Build and return the caller's export."""
        return Response(member_export(request.user))
