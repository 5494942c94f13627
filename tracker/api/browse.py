"""API v1 of browse: a torrent's peers and snatches, tags, bookmarks
(docs/browse-and-feeds.md). The torrent list's filters are ``tracker.filters.TorrentFilter``
(``views.TorrentListCreateView``)."""

from __future__ import annotations

from typing import Any

import redis
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import FIELD_ERRORS
from core.errors import InvalidInput
from tracker.api.serializers import DetailSerializer, TorrentSummarySerializer
from tracker.models import Bookmark, Tag, Torrent, TorrentHistory
from tracker.peers import PeerRow, torrent_peer_rows
from tracker.selectors import torrent_visible
from tracker.services.browse import bookmark_set, tags_parse, torrent_tags_set

FORBIDDEN = OpenApiResponse(DetailSerializer, description="Not allowed for this member.")
NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such torrent, or not visible.")
UNAVAILABLE = OpenApiResponse(DetailSerializer, description="The peer store is unreachable.")


class PeerStoreUnavailable(APIException):
    """The shared peer store (Redis) cannot be read right now."""

    status_code = 503
    default_detail = "The peer list is unavailable right now; try again shortly."
    default_code = "peer_store_unavailable"


def _visible_torrent(request: Request, pk: int) -> Torrent:
    """Torrent ``pk`` if the caller may see it (``torrent_visible``), else 404."""
    return get_object_or_404(
        torrent_visible(viewer=request.user).only("pk", "uploader_id", "status", "name"), pk=pk
    )


# --- Serializers ---------------------------------------------------------------------------


class PeerSerializer(serializers.Serializer):
    """One current peer. ``ip`` and ``port`` are null unless the caller is staff."""

    member = serializers.CharField(source="username", help_text="The peer's member.")
    client = serializers.CharField(help_text="Client, from the peer_id prefix.")
    uploaded = serializers.IntegerField(help_text="Bytes, as the client last announced.")
    downloaded = serializers.IntegerField(help_text="Bytes, as the client last announced.")
    left = serializers.IntegerField(help_text="Bytes left to download (0: seeding).")
    is_seeder = serializers.BooleanField()
    last_announce = serializers.DateTimeField()
    ip = serializers.SerializerMethodField(help_text="Staff only (null for members).")
    port = serializers.SerializerMethodField(help_text="Staff only (null for members).")

    def _staff(self) -> bool:
        return bool(self.context.get("show_addresses"))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ip(self, peer: PeerRow) -> str | None:
        """The peer's address for staff; ``None`` for members."""
        return (peer.ip or None) if self._staff() else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_port(self, peer: PeerRow) -> int | None:
        """The peer's port for staff; ``None`` for members."""
        return peer.port if self._staff() else None


class SnatchSerializer(serializers.ModelSerializer):
    """One completed download: who, when, and how long they have seeded it (seconds)."""

    member = serializers.CharField(source="member.username", read_only=True)
    seed_seconds = serializers.IntegerField(read_only=True, help_text="Seconds seeded in all.")

    class Meta:
        model = TorrentHistory
        fields = ["member", "completed_at", "seed_seconds"]
        read_only_fields = fields


class TagSerializer(serializers.ModelSerializer):
    """A tag and how many approved torrents carry it."""

    torrents = serializers.IntegerField(source="torrent_count", read_only=True)

    class Meta:
        model = Tag
        fields = ["name", "torrents"]
        read_only_fields = fields


class TagsInputSerializer(serializers.Serializer):
    """A torrent's new tags (replacing the old ones)."""

    tags = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=100,
        allow_empty=True,
        help_text="Tags: lower-case letters, digits and dashes (normalised); at most "
        "PBTS_MAX_TAGS.",
    )

    def validate_tags(self, value: list[str]) -> list[str]:
        """Normalised tags (``tags_parse``); a bad or surplus tag is a field error."""
        try:
            return tags_parse(value)
        except InvalidInput as err:
            raise serializers.ValidationError(err.message) from err


class TagsOutputSerializer(serializers.Serializer):
    """A torrent's tags, sorted."""

    tags = serializers.ListField(child=serializers.CharField(), read_only=True)


class BookmarkSerializer(serializers.ModelSerializer):
    """One of the caller's bookmarks: the torrent and when it was bookmarked."""

    torrent = TorrentSummarySerializer(read_only=True)

    class Meta:
        model = Bookmark
        fields = ["torrent", "created_at"]
        read_only_fields = fields


class BookmarkStateSerializer(serializers.Serializer):
    """Whether the caller has bookmarked the torrent now."""

    bookmarked = serializers.BooleanField(read_only=True)


# --- Views ---------------------------------------------------------------------------------


class TorrentPeerListView(generics.ListAPIView):
    """The current peers of a torrent the caller may see: seeders first, then the most
    recently announced. Addresses (``ip``, ``port``) are shown to staff only."""

    serializer_class = PeerSerializer
    queryset = Torrent.objects.none()  # for the schema (the path's pk); rows from the store

    def get_queryset(self) -> list[PeerRow]:  # type: ignore[override]
        """The peer rows from the peer store (``tracker.peers``)."""
        torrent = _visible_torrent(self.request, self.kwargs["pk"])
        try:
            return torrent_peer_rows(torrent_id=torrent.pk)
        except redis.RedisError as err:
            raise PeerStoreUnavailable from err

    def get_serializer_context(self) -> dict[str, Any]:
        """Addresses only for staff."""
        context = super().get_serializer_context()
        context["show_addresses"] = bool(self.request.user.is_moderator)
        return context

    @extend_schema(
        responses={200: PeerSerializer(many=True), 404: NOT_FOUND, 503: UNAVAILABLE},
        summary="Peers of a torrent",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the torrent's current peers, paginated."""
        return super().get(request, *args, **kwargs)


class TorrentSnatchListView(generics.ListAPIView):
    """Who completed a torrent the caller may see, newest first, with seeding time."""

    serializer_class = SnatchSerializer
    queryset = TorrentHistory.objects.none()  # the model, for the schema

    def get_queryset(self) -> QuerySet[TorrentHistory]:
        """Completed histories of the torrent (404 if not visible)."""
        torrent = _visible_torrent(self.request, self.kwargs["pk"])
        return (
            TorrentHistory.objects.filter(torrent=torrent, completed_at__isnull=False)
            .select_related("member")
            .only("member__username", "completed_at", "seed_seconds")
            .order_by("-completed_at", "-id")
        )

    @extend_schema(responses={200: SnatchSerializer(many=True), 404: NOT_FOUND}, summary="Snatches")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the torrent's snatches, paginated."""
        return super().get(request, *args, **kwargs)


class TorrentTagsView(APIView):
    """Replace a torrent's tags (its uploader or staff)."""

    @extend_schema(
        request=TagsInputSerializer,
        responses={200: TagsOutputSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Set a torrent's tags",
    )
    def put(self, request: Request, pk: int) -> Response:
        """Validate and store the tags; returns them."""
        form = TagsInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        torrent = _visible_torrent(request, pk)
        names = torrent_tags_set(
            torrent=torrent, actor=request.user, tags=form.validated_data["tags"]
        )
        return Response(TagsOutputSerializer({"tags": names}).data)


class TagListView(generics.ListAPIView):
    """Tags carried by approved torrents, most used first."""

    serializer_class = TagSerializer
    queryset = Tag.objects.none()  # the model, for the schema

    def get_queryset(self) -> QuerySet[Tag]:
        """Tags with their approved torrent count (tags of no approved torrent left out)."""
        return (
            Tag.objects.annotate(
                torrent_count=Count("torrents", filter=Q(torrents__status="approved"))
            )
            .filter(torrent_count__gt=0)
            .order_by("-torrent_count", "name")
        )

    @extend_schema(summary="List tags")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List tags, paginated."""
        return super().get(request, *args, **kwargs)


class BookmarkListView(generics.ListAPIView):
    """The caller's own bookmarks, newest first (never another member's)."""

    serializer_class = BookmarkSerializer
    queryset = Bookmark.objects.none()  # the model, for the schema

    def get_queryset(self) -> QuerySet[Bookmark]:
        """The caller's bookmarks of torrents they may still see."""
        visible = torrent_visible(viewer=self.request.user)
        return (
            Bookmark.objects.filter(member=self.request.user, torrent__in=visible)
            .select_related("torrent", "torrent__category", "torrent__uploader")
            .prefetch_related("torrent__tags")
            .defer("torrent__metainfo", "torrent__description", "torrent__description_html")
            .order_by("-created_at", "-id")
        )

    @extend_schema(summary="My bookmarks")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """List the caller's bookmarks, paginated."""
        return super().get(request, *args, **kwargs)


class TorrentBookmarkView(APIView):
    """Bookmark (PUT) or un-bookmark (DELETE) a torrent the caller may see; idempotent."""

    def _set(self, request: Request, pk: int, bookmarked: bool) -> Response:
        torrent = _visible_torrent(request, pk)
        now = bookmark_set(member=request.user, torrent=torrent, bookmarked=bookmarked)
        return Response(BookmarkStateSerializer({"bookmarked": now}).data)

    @extend_schema(
        request=None,
        responses={200: BookmarkStateSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Bookmark a torrent",
    )
    def put(self, request: Request, pk: int) -> Response:
        """Add the bookmark."""
        return self._set(request, pk, True)

    @extend_schema(
        request=None,
        responses={200: BookmarkStateSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Remove a bookmark",
    )
    def delete(self, request: Request, pk: int) -> Response:
        """Remove the bookmark."""
        return self._set(request, pk, False)
