"""``/config``: the tracker's public configuration (GET, anyone) and the run-time values a
moderator may change (POST, staff only), docs/config.md.

The original PBTS let anyone turn receipt verification off here (docs origin.md, hole 1). Here
GET shows what is in force and POST changes only ``min_ratio``, ``max_peers``,
``ratio_grace_bytes`` and ``sitewide_freeleech`` (``tracker.services.runtime_config``,
audited); ``verify_signatures`` cannot be turned off, and any other key (``receipt_window``,
``tee_mode``, ...) is refused with a 400 naming it, never ignored.

It lives in the chain app, the top of the import order, because it reports facts of every
app (the chain's configuration, the receipts' realm and window, the tracker's rules).
"""

from __future__ import annotations

import platform
from typing import Any

import django
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chain.selectors import chain_is_configured
from core.api.permissions import IsModeratorInGoodStanding
from core.api.schema import DETAIL
from receipts.site import site_realm
from tracker.health import site_version
from tracker.runtime_config import MAX_PEERS_RANGE, MIN_RATIO_RANGE, RuntimeValues, runtime_values
from tracker.services.runtime_config import CHANGEABLE, runtime_config_update

VERIFY_OFF_MESSAGE = (
    "Receipt signature verification cannot be turned off: every receipt is always verified."
)
#: Keys the original accepted that this site shows but never changes at run time.
READ_ONLY_KEYS = (
    "receipt_window",
    "tee_mode",
    "realm_id",
    "announce_interval",
    "min_interval",
    "chain_configured",
    "versions",
)


class VersionsSerializer(serializers.Serializer):
    """Software versions of this process."""

    pbts = serializers.CharField(help_text="PBTS version (pyproject.toml), or 'unknown'.")
    python = serializers.CharField()
    django = serializers.CharField()


class ConfigSerializer(serializers.Serializer):
    """The public configuration in force (``GET /config``; ``POST`` answers it too)."""

    min_ratio = serializers.FloatField(help_text="Leeching is refused below this ratio.")
    max_peers = serializers.IntegerField(help_text="At most this many peers per reply.")
    announce_interval = serializers.IntegerField(help_text="Seconds between announces.")
    min_interval = serializers.IntegerField(help_text="Seconds an announce may not come sooner.")
    ratio_grace_bytes = serializers.IntegerField(
        help_text="Bytes a member may download before the ratio rule applies."
    )
    sitewide_freeleech = serializers.BooleanField(
        help_text="While true, no download is counted on any torrent."
    )
    realm_id = serializers.CharField(
        help_text="This site's receipt realm (64 hex): receipts signed for it only count here."
    )
    verify_signatures = serializers.BooleanField(help_text="Always true.")
    receipt_window = serializers.IntegerField(
        help_text="Receipts older than this many seconds are refused."
    )
    tee_mode = serializers.CharField(help_text='Always "none" (no trusted execution).')
    chain_configured = serializers.BooleanField(help_text="Whether the chain RPC and key are set.")
    version = serializers.IntegerField(help_text="Run-time configuration version (0: settings).")
    versions = VersionsSerializer()


class ConfigUpdateSerializer(serializers.Serializer):
    """``POST /config``: one or more of the four values staff may change at run time."""

    min_ratio = serializers.FloatField(
        required=False, min_value=MIN_RATIO_RANGE[0], max_value=MIN_RATIO_RANGE[1]
    )
    max_peers = serializers.IntegerField(
        required=False, min_value=MAX_PEERS_RANGE[0], max_value=MAX_PEERS_RANGE[1]
    )
    ratio_grace_bytes = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)
    sitewide_freeleech = serializers.BooleanField(required=False)
    verify_signatures = serializers.BooleanField(
        required=False, help_text="Accepted only as true: verification cannot be turned off."
    )

    def validate_verify_signatures(self, value: bool) -> bool:
        """Only ``true`` (hole 1 of the original: anyone could turn verification off)."""
        if value is not True:
            raise serializers.ValidationError(VERIFY_OFF_MESSAGE)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Refuse every key that is not changeable (named in the error), and an empty body."""
        initial = self.initial_data if isinstance(self.initial_data, dict) else {}
        errors = {}
        for key in initial:
            if key in self.fields:
                continue
            if key in READ_ONLY_KEYS:
                errors[key] = [f"{key} cannot be changed at run time."]
            else:
                errors[key] = [f"Unknown setting; changeable: {', '.join(CHANGEABLE)}."]
        if errors:
            raise serializers.ValidationError(errors)
        if not any(name in attrs for name in CHANGEABLE):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Nothing to change; changeable: {', '.join(CHANGEABLE)}."]}
            )
        return attrs


def public_config(values: RuntimeValues) -> dict[str, Any]:
    """The body of ``GET /config`` for the run-time ``values`` in force."""
    return {
        **values.as_dict(),
        "announce_interval": settings.PBTS_ANNOUNCE_INTERVAL,
        "min_interval": settings.PBTS_ANNOUNCE_MIN_INTERVAL,
        "realm_id": site_realm().hex(),
        "verify_signatures": True,
        "receipt_window": settings.PBTS_RECEIPT_WINDOW_SECONDS,
        "tee_mode": "none",
        "chain_configured": chain_is_configured(),
        "version": values.version,
        "versions": {
            "pbts": site_version(),
            "python": platform.python_version(),
            "django": django.get_version(),
        },
    }


FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: {"<field>": ["message", ...]} (unknown keys are named too).',
)


class ConfigView(APIView):
    """``GET /config`` (public) and ``POST /config`` (staff in good standing; sessions need
    the CSRF token)."""

    def get_permissions(self):
        """Anyone reads; only a moderator in good standing writes."""
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [AllowAny()]
        return [IsModeratorInGoodStanding()]

    def get_authenticators(self):
        """GET needs no credentials (a bad token must not turn a public read into 401)."""
        if getattr(self, "request", None) is not None and self.request.method == "GET":
            return []
        return super().get_authenticators()

    @extend_schema(
        summary="Public tracker configuration",
        responses={200: ConfigSerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        """The configuration in force."""
        return Response(public_config(runtime_values()))

    @extend_schema(
        summary="Change run-time tracker settings (staff)",
        request=ConfigUpdateSerializer,
        responses={200: ConfigSerializer, 400: FIELD_ERRORS, 401: DETAIL, 403: DETAIL},
    )
    def post(self, request: Request) -> Response:
        """Change ``min_ratio``, ``max_peers``, ``ratio_grace_bytes`` or
        ``sitewide_freeleech``; every tracker process applies the change within
        ``PBTS_CONFIG_SECONDS``."""
        form = ConfigUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        changes = {k: v for k, v in form.validated_data.items() if k in CHANGEABLE}
        values = runtime_config_update(actor=request.user, changes=changes)
        return Response(public_config(values))
