"""API serializers of the moderation app: input validation and the JSON shapes of reports,
warnings, staff notes and the site statistics. Services do the work in between."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from moderation.models import MemberWarning, Report, ReportCategory, ReportStatus, StaffNote
from moderation.selectors import warning_state
from moderation.services._common import NOTE_MAX_CHARS, REASON_MAX_CHARS

# Choice sets named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] (field "status" is used by
# other apps' components too).
CLOSE_STATUS_CHOICES = [(ReportStatus.RESOLVED, "Resolved"), (ReportStatus.DISMISSED, "Dismissed")]
LIST_STATUS_CHOICES = [
    ("active", "Open and claimed"),
    *ReportStatus.choices,
    ("all", "All"),
]
WARNING_STATE_CHOICES = [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]


class ModerationReportCreateSerializer(serializers.Serializer):
    """A member's report: exactly one of ``torrent`` (id) and ``member`` (username)."""

    torrent = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Torrent id."
    )
    member = serializers.CharField(required=False, max_length=150, help_text="Username.")
    category = serializers.ChoiceField(choices=ReportCategory.choices)
    text = serializers.CharField(
        max_length=100_000, help_text="What is wrong; at most PBTS_REPORT_TEXT_MAX_CHARS."
    )

    def validate(self, attrs: dict) -> dict:
        """Exactly one target."""
        if ("torrent" in attrs) == ("member" in attrs):
            raise serializers.ValidationError(
                {"torrent": ["Give either a torrent id or a member's username."]}
            )
        return attrs


class ModerationReportSerializer(serializers.ModelSerializer):
    """A report as staff (and, for their own new report, the reporter) see it."""

    reporter = serializers.CharField(source="reporter.username", read_only=True)
    member = serializers.CharField(
        source="member.username", read_only=True, allow_null=True, default=None
    )
    claimed_by = serializers.CharField(
        source="claimed_by.username", read_only=True, allow_null=True, default=None
    )
    resolved_by = serializers.CharField(
        source="resolved_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Report
        fields = (
            "id",
            "reporter",
            "torrent",
            "member",
            "category",
            "text",
            "status",
            "claimed_by",
            "claimed_at",
            "resolved_by",
            "resolved_at",
            "resolution",
            "created_at",
        )
        read_only_fields = fields


class ModerationReportCloseSerializer(serializers.Serializer):
    """Resolve or dismiss a report with a note the reporter reads."""

    status = serializers.ChoiceField(choices=CLOSE_STATUS_CHOICES)
    resolution = serializers.CharField(max_length=REASON_MAX_CHARS)


class ModerationReportListQuerySerializer(serializers.Serializer):
    """``?status=`` of the staff report list."""

    status = serializers.ChoiceField(choices=LIST_STATUS_CHOICES, required=False, default="active")


class ModerationWarningCreateSerializer(serializers.Serializer):
    """Warn a member for ``days`` days (1 to ``PBTS_WARNING_MAX_DAYS``)."""

    reason = serializers.CharField(max_length=REASON_MAX_CHARS)
    days = serializers.IntegerField(min_value=1, max_value=100_000)

    def validate_days(self, value: int) -> int:
        """At most ``PBTS_WARNING_MAX_DAYS``."""
        if value > settings.PBTS_WARNING_MAX_DAYS:
            raise serializers.ValidationError(f"At most {settings.PBTS_WARNING_MAX_DAYS} days.")
        return value


class ModerationWarningRevokeSerializer(serializers.Serializer):
    """Revoke a warning early; the reason is optional."""

    reason = serializers.CharField(max_length=REASON_MAX_CHARS, required=False, allow_blank=True)


class ModerationWarningSerializer(serializers.ModelSerializer):
    """A warning; ``state`` is ``active``, ``expired`` or ``revoked``."""

    member = serializers.CharField(source="member.username", read_only=True)
    issued_by = serializers.CharField(
        source="issued_by.username", read_only=True, allow_null=True, default=None
    )
    state = serializers.SerializerMethodField()

    class Meta:
        model = MemberWarning
        fields = (
            "id",
            "member",
            "issued_by",
            "reason",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoke_reason",
            "state",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=WARNING_STATE_CHOICES))
    def get_state(self, warning: MemberWarning) -> str:
        """Computed from the clock."""
        return warning_state(warning)


class ModerationNoteCreateSerializer(serializers.Serializer):
    """A staff note's text."""

    body = serializers.CharField(max_length=NOTE_MAX_CHARS)


class ModerationNoteSerializer(serializers.ModelSerializer):
    """A staff note (staff only)."""

    member = serializers.CharField(source="member.username", read_only=True)
    author = serializers.CharField(
        source="author.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = StaffNote
        fields = ("id", "member", "author", "body", "created_at")
        read_only_fields = fields


class ModerationSiteStatsSerializer(serializers.Serializer):
    """The site statistics (bytes for traffic), cached ``PBTS_STATS_CACHE_SECONDS``."""

    members_total = serializers.IntegerField()
    members_active = serializers.IntegerField()
    members_banned = serializers.IntegerField()
    torrents_total = serializers.IntegerField()
    torrents_approved = serializers.IntegerField()
    torrents_pending = serializers.IntegerField()
    peers = serializers.IntegerField()
    seeders = serializers.IntegerField()
    leechers = serializers.IntegerField()
    uploaded = serializers.SerializerMethodField()
    downloaded = serializers.SerializerMethodField()
    verified_uploaded = serializers.SerializerMethodField()
    verified_downloaded = serializers.SerializerMethodField()
    computed_at = serializers.DateTimeField(source="computed")

    @extend_schema_field(OpenApiTypes.INT64)
    def get_uploaded(self, stats) -> int:
        return stats.uploaded

    @extend_schema_field(OpenApiTypes.INT64)
    def get_downloaded(self, stats) -> int:
        return stats.downloaded

    @extend_schema_field(OpenApiTypes.INT64)
    def get_verified_uploaded(self, stats) -> int:
        return stats.verified_uploaded

    @extend_schema_field(OpenApiTypes.INT64)
    def get_verified_downloaded(self, stats) -> int:
        return stats.verified_downloaded
