"""Browse filters and sorting (django-filter), shared by the torrent list page and the API.

One :class:`TorrentFilter` serves both: the page shows its form (an invalid value is shown as
a form error and ignored), the API's ``DjangoFilterBackend`` answers 400 naming the field, and
drf-spectacular documents every parameter from it.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower

from core.errors import InvalidInput
from tracker.models import Bookmark, Torrent, TorrentHistory
from tracker.peers import member_swarm_torrents
from tracker.selectors import torrent_browse
from tracker.services.browse import tag_normalize

# Sortable columns: key -> (the expression, its natural direction). Ties: newest (or oldest,
# ascending) id. Names sort case-insensitively, as people read them.
SORT_COLUMNS: dict[str, tuple[object, str]] = {
    "name": (Lower("name"), "asc"),
    "size": ("size", "desc"),
    "seeders": ("seeders", "desc"),
    "leechers": ("leechers", "desc"),
    "snatches": ("snatches", "desc"),
    "date": ("created_at", "desc"),
}
SORT_LABELS = {
    "name": "Name",
    "size": "Size",
    "seeders": "Seeders",
    "leechers": "Leechers",
    "snatches": "Snatches",
    "date": "Uploaded",
}
ORDER_CHOICES = [("asc", "Ascending"), ("desc", "Descending")]
MINE_CHOICES = [
    ("seeding", "Seeding now"),
    ("leeching", "Leeching now"),
    ("snatched", "Snatched"),
    ("bookmarked", "Bookmarked"),
]


def torrent_order(queryset: QuerySet[Torrent], *, sort: str, order: str) -> QuerySet[Torrent]:
    """``queryset`` ordered by column ``sort`` (``SORT_COLUMNS``; unknown: ``date``) in
    direction ``order`` (``asc``/``desc``; anything else: the column's natural one)."""
    expression, natural = SORT_COLUMNS.get(sort, SORT_COLUMNS["date"])
    direction = order if order in ("asc", "desc") else natural
    if isinstance(expression, str):
        key = expression if direction == "asc" else f"-{expression}"
        return queryset.order_by(key, "id" if direction == "asc" else "-id")
    ordered = expression.asc() if direction == "asc" else expression.desc()  # type: ignore[attr-defined]
    return queryset.order_by(ordered, "id" if direction == "asc" else "-id")


class TagField(forms.CharField):
    """One tag, normalised as stored (``tracker.services.browse.tag_normalize``)."""

    def to_python(self, value: object) -> str:
        """The normalised tag, or ``''``; a malformed one is a validation error."""
        text = super().to_python(value)
        if not text:
            return ""
        try:
            return tag_normalize(text)
        except InvalidInput as err:
            raise ValidationError(err.message) from err


class TagFilter(django_filters.CharFilter):
    """Torrents carrying one tag (``?tag=sci-fi``)."""

    field_class = TagField


class TorrentFilter(django_filters.FilterSet):
    """Browse filters over approved torrents. Every parameter is optional:

    - ``q``: words that must all appear in the name; ``category``: a category slug (an
      unknown one matches nothing); ``freeleech``: ``true``/``false``; ``uploader``: a
      username (any case); ``tag``: one tag;
    - ``mine``: ``seeding``/``leeching`` (now, from the peer store), ``snatched`` (completed
      once), ``bookmarked`` (the caller's bookmarks);
    - ``sort`` (``SORT_COLUMNS``, default ``date``) and ``order`` (``asc``/``desc``, default
      the column's natural direction: names ascending, the rest descending).
    """

    q = django_filters.CharFilter(
        method="filter_words", max_length=200, label="Search", help_text="Words in the name."
    )
    category = django_filters.CharFilter(
        field_name="category__slug", max_length=64, label="Category", help_text="Category slug."
    )
    freeleech = django_filters.BooleanFilter(
        field_name="is_freeleech", label="Freeleech", help_text="Freeleech torrents only (true)."
    )
    uploader = django_filters.CharFilter(
        field_name="uploader__username",
        lookup_expr="iexact",
        max_length=150,
        label="Uploader",
        help_text="The uploader's username.",
    )
    tag = TagFilter(method="filter_tag", max_length=64, label="Tag", help_text="One tag.")
    mine = django_filters.ChoiceFilter(
        choices=MINE_CHOICES,
        method="filter_mine",
        label="Mine",
        empty_label="Any torrent",
        help_text="Torrents I seed or leech now, snatched, or bookmarked.",
    )
    sort = django_filters.ChoiceFilter(
        choices=[(key, SORT_LABELS[key]) for key in SORT_COLUMNS],
        method="filter_nothing",
        label="Sort by",
        empty_label=None,
        help_text="Column to sort by (default date).",
    )
    order = django_filters.ChoiceFilter(
        choices=ORDER_CHOICES,
        method="filter_nothing",
        label="Order",
        empty_label="Default",
        help_text="asc or desc (default: names ascending, other columns descending).",
    )

    class Meta:
        model = Torrent
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None) -> None:
        super().__init__(
            data=data,
            queryset=torrent_browse() if queryset is None else queryset,
            request=request,
            prefix=prefix,
        )

    def filter_words(self, queryset: QuerySet[Torrent], name: str, value: str):
        """Every word (the first ten) must appear in the name, any case."""
        for word in value.split()[:10]:
            queryset = queryset.filter(name__icontains=word)
        return queryset

    def filter_tag(self, queryset: QuerySet[Torrent], name: str, value: str):
        """Torrents carrying tag ``value``."""
        return queryset.filter(tags__name=value) if value else queryset

    def filter_mine(self, queryset: QuerySet[Torrent], name: str, value: str):
        """The caller's torrents of one kind (see :data:`MINE_CHOICES`)."""
        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated:
            return queryset.none()
        if value in ("seeding", "leeching"):
            seeding, leeching = member_swarm_torrents(member_id=user.pk)
            return queryset.filter(pk__in=sorted(seeding if value == "seeding" else leeching))
        if value == "snatched":
            done = TorrentHistory.objects.filter(
                member=user, torrent=OuterRef("pk"), completed_at__isnull=False
            )
            return queryset.filter(Exists(done))
        if value == "bookmarked":
            return queryset.filter(
                Exists(Bookmark.objects.filter(member=user, torrent=OuterRef("pk")))
            )
        return queryset

    def filter_nothing(self, queryset: QuerySet[Torrent], name: str, value: str):
        """``sort`` and ``order`` act together in :meth:`filter_queryset`."""
        return queryset

    def filter_queryset(self, queryset: QuerySet[Torrent]) -> QuerySet[Torrent]:
        """Apply the valid filters, then the ordering (invalid values were dropped)."""
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        return torrent_order(
            queryset, sort=data.get("sort") or "date", order=data.get("order") or ""
        )
