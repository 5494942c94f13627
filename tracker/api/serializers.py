"""API v1 serializers: input validation and the JSON shapes of members, categories, torrents.

Read serializers only turn model instances into JSON; write serializers only validate input.
Services (``tracker.services``) do the work in between.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.text import normalize_newlines
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import DomainError
from core.two_factor import has_two_factor
from reputation.models import Ledger
from reputation.policy import ratio
from reputation.selectors import ledger_site_figures
from tracker.models import (
    Category,
    HitAndRunState,
    Member,
    Torrent,
    TorrentFile,
    TorrentStatus,
)
from tracker.selectors import HISTORY_SECTIONS, member_announce_url
from tracker.services.browse import tags_parse
from tracker.services.hnr import HnrRule


def _ledger_of(member: Member) -> Ledger | None:
    """The member's ledger, or ``None`` for an account created without one."""
    try:
        return member.ledger
    except Ledger.DoesNotExist:
        return None


class LedgerFieldsMixin(serializers.Serializer):
    """``uploaded``/``downloaded`` (bytes, integers) and ``ratio`` from ``member.ledger``."""

    uploaded = serializers.SerializerMethodField(help_text="Bytes uploaded, as announced.")
    downloaded = serializers.SerializerMethodField(help_text="Bytes downloaded, as announced.")
    ratio = serializers.SerializerMethodField(
        help_text=(
            "(uploaded + upload bought with bonus points) / downloaded, the ratio the site's"
            " rule uses; null while nothing was downloaded."
        )
    )

    @extend_schema_field(OpenApiTypes.INT64)
    def get_uploaded(self, member: Member) -> int:
        """Bytes uploaded (0 without a ledger)."""
        ledger = _ledger_of(member)
        return ledger.uploaded if ledger else 0

    @extend_schema_field(OpenApiTypes.INT64)
    def get_downloaded(self, member: Member) -> int:
        """Bytes downloaded (0 without a ledger)."""
        ledger = _ledger_of(member)
        return ledger.downloaded if ledger else 0

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_ratio(self, member: Member) -> float | None:
        """The share ratio the site's rule uses (``reputation.policy.site_figures``: bonus
        upload and imported figures per the import policy included)."""
        ledger = _ledger_of(member)
        if ledger is None:
            return None
        return ratio(*ledger_site_figures(ledger))


class MeSerializer(LedgerFieldsMixin, serializers.ModelSerializer):
    """The calling member's own account, with the secrets only they may see."""

    announce_url = serializers.SerializerMethodField(
        help_text="Personal announce URL; keep it secret."
    )
    two_factor_enabled = serializers.SerializerMethodField(
        help_text="Logging in asks for a code of an authenticator app (docs/two-factor.md)."
    )

    class Meta:
        model = Member
        fields = [
            "username",
            "passkey",
            "announce_url",
            "uploaded",
            "downloaded",
            "ratio",
            "member_class",
            "invites_left",
            "can_download",
            "hnr_count",
            "hnr_disabled",
            "is_banned",
            "date_joined",
            "two_factor_enabled",
        ]
        read_only_fields = fields

    def get_announce_url(self, member: Member) -> str:
        """The member's announce URL (``<PBTS_BASE_URL>/announce/<passkey>``)."""
        return member_announce_url(member)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_two_factor_enabled(self, member: Member) -> bool:
        """The member has a confirmed authenticator app (``core.two_factor``)."""
        return has_two_factor(member)


class PasskeyResetSerializer(serializers.Serializer):
    """Response of a passkey reset: the new passkey and the announce URL built on it."""

    passkey = serializers.CharField(read_only=True)
    announce_url = serializers.CharField(read_only=True)


class TokenResetSerializer(serializers.Serializer):
    """Response of an API token reset: the new token (the old one no longer works)."""

    token = serializers.CharField(read_only=True)


class MemberSerializer(LedgerFieldsMixin, serializers.ModelSerializer):
    """A member as staff see them (no passkey)."""

    class Meta:
        model = Member
        fields = [
            "id",
            "username",
            "email",
            "member_class",
            "is_staff",
            "is_banned",
            "ban_reason",
            "can_download",
            "hnr_count",
            "hnr_disabled",
            "is_ratio_exempt",
            "invites_left",
            "uploaded",
            "downloaded",
            "ratio",
            "date_joined",
        ]
        read_only_fields = fields


class MemberQuerySerializer(serializers.Serializer):
    """Query parameters of the staff member list."""

    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=150,
        default="",
        help_text="Part of a username or e-mail address (case-insensitive).",
    )


class ReasonSerializer(serializers.Serializer):
    """Input of a ban or unban: the reason recorded in the audit log."""

    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class CategorySerializer(serializers.ModelSerializer):
    """A torrent category."""

    class Meta:
        model = Category
        fields = ["name", "slug"]
        read_only_fields = fields


class TorrentFileSerializer(serializers.ModelSerializer):
    """One file of a torrent: ``path`` (``/``-joined) and ``size`` in bytes."""

    class Meta:
        model = TorrentFile
        fields = ["path", "size"]
        read_only_fields = fields


class TorrentSummarySerializer(serializers.ModelSerializer):
    """A torrent in browse results. Needs ``category`` and ``uploader`` selected."""

    category = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, help_text="Category slug."
    )
    uploader = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    tags = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True, help_text="Tags (lower-case slugs)."
    )

    class Meta:
        model = Torrent
        fields = [
            "id",
            "info_hash",
            "name",
            "category",
            "size",
            "piece_count",
            "file_count",
            "seeders",
            "leechers",
            "snatches",
            "is_freeleech",
            "is_double_upload",
            "uploader",
            "tags",
            "created_at",
        ]
        read_only_fields = fields


DETAIL_FILES = 100
"""Files embedded in a torrent's detail; all of them are at ``files_url``, paginated."""


class TorrentDetailSerializer(TorrentSummarySerializer):
    """One torrent in full: description (raw and rendered when saved), its first
    ``DETAIL_FILES`` files (``file_count`` says how many there are, ``files_url`` lists them
    all, paginated), pieces and status."""

    description_html = serializers.CharField(
        read_only=True,
        help_text="The description rendered from Markdown and sanitized (when it was saved).",
    )
    files = serializers.SerializerMethodField(
        help_text=f"The first {DETAIL_FILES} files (all of them when file_count is at most "
        f"{DETAIL_FILES}); files_url lists every file, paginated."
    )
    files_url = serializers.SerializerMethodField(
        help_text="The torrent's files, paginated (?page=, ?page_size= up to 200)."
    )

    class Meta(TorrentSummarySerializer.Meta):
        fields = [
            *TorrentSummarySerializer.Meta.fields,
            "description",
            "description_html",
            "files",
            "files_url",
            "piece_length",
            "is_hybrid",
            "status",
            "moderation_reason",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(TorrentFileSerializer(many=True))
    def get_files(self, torrent: Torrent) -> list[dict]:
        """The first ``DETAIL_FILES`` files, in the torrent's order (one query)."""
        return TorrentFileSerializer(torrent.files.all()[:DETAIL_FILES], many=True).data

    def get_files_url(self, torrent: Torrent) -> str:
        """Absolute URL of the paginated file list (a path without a request)."""
        path = reverse("api:torrent-files", kwargs={"pk": torrent.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class TorrentUploadedSerializer(TorrentDetailSerializer):
    """Response of an upload: the registered torrent plus what the uploader must do next."""

    message = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(
        help_text="Where to fetch the rewritten .torrent (API, token auth)."
    )

    class Meta(TorrentDetailSerializer.Meta):
        fields = [*TorrentDetailSerializer.Meta.fields, "message", "download_url"]
        read_only_fields = fields

    def get_message(self, torrent: Torrent) -> str:
        """Tell the uploader that the info_hash changed and what to seed from."""
        text = (
            "Torrent registered. The tracker rewrote it (private flag and source), so its "
            f"info_hash is now {torrent.info_hash}: download the rewritten .torrent and seed "
            "from that file, not from the one you uploaded."
        )
        if torrent.status == TorrentStatus.PENDING:
            text += " It is listed once staff approve it."
        return text

    def get_download_url(self, torrent: Torrent) -> str:
        """Absolute URL of the API download endpoint of this torrent."""
        path = reverse("api:torrent-download", kwargs={"pk": torrent.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class MarkdownField(serializers.CharField):
    """Markdown text: CRLF and CR line breaks become ``\\n`` before ``max_length`` is checked
    (as the upload form and the torrent service count them)."""

    def to_internal_value(self, data: object) -> str:
        """The text with ``\\n`` line breaks."""
        return normalize_newlines(super().to_internal_value(data))


class TorrentUploadSerializer(serializers.Serializer):
    """Multipart input of an upload. ``file`` is the .torrent; the rest is optional."""

    file = serializers.FileField(help_text="The .torrent file.")
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=255,
        help_text="Display name; defaults to the torrent's own name.",
    )
    category = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Category.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Category slug (see /api/v1/categories/).",
        error_messages={"does_not_exist": 'Unknown category "{value}".'},
    )
    description = MarkdownField(
        required=False,
        allow_blank=True,
        default="",
        max_length=settings.PBTS_DESCRIPTION_MAX_CHARS,
        help_text="Markdown (CommonMark, tables, strikethrough); line breaks count one character.",
    )
    tags = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=1000,
        help_text="Tags separated by commas or spaces (lower-case letters, digits, dashes).",
    )

    def validate_tags(self, value: str) -> list[str]:
        """Normalised tags (``tracker.services.browse.tags_parse``)."""
        try:
            return tags_parse(value)
        except DomainError as err:
            raise serializers.ValidationError(err.message) from err


class TorrentModerateSerializer(serializers.Serializer):
    """Input of a moderation decision on a torrent."""

    status = serializers.ChoiceField(choices=TorrentStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DetailSerializer(serializers.Serializer):
    """An error without a field: ``{"detail": "..."}``."""

    detail = serializers.CharField(read_only=True)


# --- History (docs/hit-and-run.md) -----------------------------------------------------


class HistoryQuerySerializer(serializers.Serializer):
    """Query parameters of a member's history."""

    section = serializers.ChoiceField(
        choices=list(HISTORY_SECTIONS),
        required=False,
        default="snatched",
        help_text="snatched (completed downloads), seeding and leeching (current peers), "
        "uploads (pending and rejected too), hnr (pending, hit-and-run or forgiven snatches).",
    )


class HistoryRowSerializer(serializers.Serializer):
    """One torrent of a member's history, with the member's own figures on it (from
    ``tracker.selectors.member_history``; the history's owner in the context as ``member``)."""

    torrent_id = serializers.IntegerField(source="id", read_only=True)
    name = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True, help_text="Bytes.")
    status = serializers.ChoiceField(choices=TorrentStatus.choices, read_only=True)
    moderation_reason = serializers.SerializerMethodField(
        help_text="Why staff rejected it; only on the member's own uploads."
    )
    is_freeleech = serializers.BooleanField(read_only=True)
    uploaded = serializers.SerializerMethodField(help_text="Bytes the member uploaded of it.")
    downloaded = serializers.SerializerMethodField(help_text="Bytes the member downloaded.")
    ratio = serializers.SerializerMethodField(
        help_text="uploaded / downloaded on this torrent; null while nothing was downloaded."
    )
    seed_seconds = serializers.SerializerMethodField(help_text="Seconds the member seeded it.")
    completed_at = serializers.DateTimeField(
        source="my_completed_at", read_only=True, allow_null=True, help_text="The snatch."
    )
    hnr_state = serializers.ChoiceField(
        choices=HitAndRunState.choices,
        read_only=True,
        allow_null=True,
        help_text="Hit-and-run state of the snatch; null when not tracked (yet).",
    )
    hnr_deadline = serializers.SerializerMethodField(
        help_text="When the snatch must be seeded or shared back by (window end)."
    )
    hnr_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The hit-and-run row of the snatch (staff forgive it at "
        "/api/v1/members/{username}/hit-and-runs/{hnr_id}/forgive/); null when not tracked.",
    )

    @extend_schema_field(OpenApiTypes.STR)
    def get_moderation_reason(self, torrent: Torrent) -> str:
        """The reason, on the history owner's own uploads only."""
        owner = self.context.get("member")
        if owner is not None and torrent.uploader_id == owner.pk:
            return torrent.moderation_reason
        return ""

    @extend_schema_field(OpenApiTypes.INT64)
    def get_uploaded(self, torrent: Torrent) -> int:
        """Bytes (0 without history)."""
        return torrent.my_uploaded or 0

    @extend_schema_field(OpenApiTypes.INT64)
    def get_downloaded(self, torrent: Torrent) -> int:
        """Bytes (0 without history)."""
        return torrent.my_downloaded or 0

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_ratio(self, torrent: Torrent) -> float | None:
        """``reputation.policy.ratio`` of the member's figures on this torrent."""
        return ratio(torrent.my_uploaded or 0, torrent.my_downloaded or 0)

    @extend_schema_field(OpenApiTypes.INT64)
    def get_seed_seconds(self, torrent: Torrent) -> int:
        """Seconds (0 without history)."""
        return torrent.my_seed_seconds or 0

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_hnr_deadline(self, torrent: Torrent) -> str | None:
        """The snatch time plus ``PBTS_HNR_WINDOW_DAYS``; null without a snatch."""
        if torrent.my_completed_at is None:
            return None
        deadline = HnrRule.from_settings().deadline(torrent.my_completed_at)
        return serializers.DateTimeField().to_representation(deadline)


# --- Account deletion (docs/my-data.md) --------------------------------------------------


class AccountDeleteSerializer(serializers.Serializer):
    """Input of ``POST /api/v1/me/delete/``: the caller's current password and an explicit
    ``confirm: true`` (the page's password field and confirmation box)."""

    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=4096,
        help_text="Your current password.",
    )
    confirm = serializers.BooleanField(
        help_text="Must be true: the account is deleted for good (anonymised), the statistics "
        "stay under the name deleted-<id>."
    )

    def validate_confirm(self, value: bool) -> bool:
        """Refuse anything but ``true``."""
        if value is not True:
            raise serializers.ValidationError("Set confirm to true to delete your account.")
        return value


# --- Hit-and-run forgiveness (docs/hit-and-run.md) ---------------------------------------


class ForgiveSerializer(serializers.Serializer):
    """Input of a hit-and-run forgiveness: the reason kept on the row and in the audit log."""

    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class HitAndRunSerializer(serializers.Serializer):
    """One hit-and-run row (``tracker.models.HitAndRun``) as staff see it after forgiving."""

    id = serializers.IntegerField(read_only=True)
    member = serializers.CharField(source="member.username", read_only=True)
    torrent_id = serializers.IntegerField(source="history.torrent_id", read_only=True)
    hnr_state = serializers.ChoiceField(
        source="state", choices=HitAndRunState.choices, read_only=True
    )
    forgiven_by = serializers.CharField(
        source="forgiven_by.username", read_only=True, allow_null=True, default=None
    )
    forgive_reason = serializers.CharField(read_only=True)
    resolved_at = serializers.DateTimeField(read_only=True, allow_null=True)
    member_hnr_count = serializers.IntegerField(
        source="member.hnr_count",
        read_only=True,
        help_text="The member's hit-and-runs counted after this change.",
    )
