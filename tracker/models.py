"""Tracker models: members, invites, categories, torrents, the client whitelist, audit log.

Models stay thin: fields, constraints and indexes. Rules live in ``tracker/services``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tracker.markup import render_markdown


def new_passkey() -> str:
    """Return a fresh passkey: 32 lower-case hex characters (128 bits from ``secrets``)."""
    return secrets.token_hex(16)


def new_invite_code() -> str:
    """Return a fresh invite code: 32 URL-safe characters from ``secrets``."""
    return secrets.token_urlsafe(24)


class MemberClass(models.TextChoices):
    """Member classes as private trackers rank them (Gazelle/UNIT3D style)."""

    USER = "user", "User"
    POWER_USER = "power_user", "Power User"
    ELITE = "elite", "Elite"
    VIP = "vip", "VIP"
    UPLOADER = "uploader", "Uploader"


class Member(AbstractUser):
    """A site member. ``passkey`` authenticates announces; ``invited_by`` records the tree."""

    passkey = models.CharField(max_length=32, unique=True, default=new_passkey)
    member_class = models.CharField(
        max_length=16, choices=MemberClass.choices, default=MemberClass.USER
    )
    invited_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="invitees"
    )
    invites_left = models.PositiveIntegerField(default=0)
    is_banned = models.BooleanField(default=False)
    ban_reason = models.TextField(blank=True)
    can_download = models.BooleanField(default=True)
    is_ratio_exempt = models.BooleanField(default=False)
    # Hit-and-runs (docs/hit-and-run.md), kept by ``tracker.services.hnr`` only: how many of
    # the member's snatches are hit-and-runs now, and whether that count disabled downloading.
    # Distinct from ``can_download`` (the staff switch), so lifting one never lifts the other.
    hnr_count = models.PositiveIntegerField(default=0)
    hnr_disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def is_moderator(self) -> bool:
        """Staff and superusers moderate."""
        return self.is_staff or self.is_superuser


class Invite(models.Model):
    """An invitation code; used once, before ``expires_at``."""

    code = models.CharField(max_length=64, unique=True, default=new_invite_code)
    inviter = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="invites_sent")
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_by = models.OneToOneField(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="invite_used"
    )
    used_at = models.DateTimeField(null=True, blank=True)
    is_revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite by {self.inviter_id} ({self.code[:6]}…)"


class Category(models.Model):
    """A torrent category (Movies, TV, Music, ...)."""

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class TorrentStatus(models.TextChoices):
    """Moderation states; only ``approved`` torrents are listed and tracked."""

    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    DELETED = "deleted", "Deleted"


class Torrent(models.Model):
    """A registered torrent, stored after the private/source rewrite (BEP 27).

    ``info_hash`` is the 40-hex SHA-1 of the rewritten bencoded info dict (the v1 hash, also
    for hybrid torrents). ``metainfo`` holds the rewritten .torrent without any announce URL
    or comment (``tracker.metainfo.rewrite``); downloads add the member's. ``description`` is
    the member's Markdown, ``description_html`` its sanitized rendering, written by the
    torrent services whenever ``description`` changes (never rendered per request). Sizes are
    bytes.
    """

    info_hash = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    description_html = models.TextField(blank=True, default="", editable=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="torrents")
    uploader = models.ForeignKey(
        Member, null=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    metainfo = models.BinaryField()
    size = models.BigIntegerField()
    piece_length = models.PositiveIntegerField()
    piece_count = models.PositiveIntegerField()
    file_count = models.PositiveIntegerField()
    is_hybrid = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=TorrentStatus.choices, default=TorrentStatus.APPROVED
    )
    moderation_reason = models.TextField(blank=True)
    is_freeleech = models.BooleanField(default=False)
    is_double_upload = models.BooleanField(default=False)
    seeders = models.PositiveIntegerField(default=0)
    leechers = models.PositiveIntegerField(default=0)
    snatches = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Browse: approved torrents, newest first, optionally in one category.
            models.Index(fields=["status", "-created_at"], name="torrent_status_created"),
            models.Index(fields=["category", "status", "-created_at"], name="torrent_cat_created"),
            # Browse sorted by seeders / size.
            models.Index(fields=["status", "-seeders"], name="torrent_status_seeders"),
            models.Index(fields=["status", "-size"], name="torrent_status_size"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(info_hash__regex=r"^[0-9a-f]{40}$"), name="torrent_info_hash_hex40"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TorrentFile(models.Model):
    """One file of a torrent; ``path`` joins the BEP 3 path list with ``/``; size in bytes."""

    torrent = models.ForeignKey(Torrent, on_delete=models.CASCADE, related_name="files")
    path = models.TextField()
    size = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.path


class ClientPrefix(models.Model):
    """A whitelisted BitTorrent client: announces whose peer_id starts with ``prefix`` pass.

    Prefixes follow the Azureus-style peer_id convention (BEP 20), e.g. ``-TR4`` for
    Transmission 4.x, ``-qB5`` for qBittorrent 5.x.
    """

    prefix = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=64)
    is_allowed = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prefix"]
        verbose_name = "client whitelist entry"
        verbose_name_plural = "client whitelist"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class SitePage(models.Model):
    """A static page (rules, FAQ) written by staff in Markdown; ``body_html`` is its sanitized
    rendering, written by :meth:`save` (pages are rendered when saved, never per request)."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=128)
    body = models.TextField()
    body_html = models.TextField(blank=True, default="", editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Render ``body`` into ``body_html`` (``tracker.markup.render_markdown``), then save;
        a save limited by ``update_fields`` that names ``body`` also writes ``body_html``."""
        self.body_html = render_markdown(self.body)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "body" in update_fields:
            kwargs["update_fields"] = {*update_fields, "body_html"}
        super().save(*args, **kwargs)


class TorrentHistory(models.Model):
    """Per-member, per-torrent statistics credited by the announce flush (bytes, seconds).

    ``completed_at`` is set by the first ``completed`` event: a snatch counts once per member
    and torrent.
    """

    # No single-column indexes: the unique (member, torrent) and the (torrent, completed_at)
    # indexes lead with these columns, and every index costs the flush an insert per new row.
    # On PostgreSQL both references are enforced by triggers once per statement, not by
    # foreign keys once per row (migration 0014_history_references_per_statement).
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="history", db_index=False
    )
    torrent = models.ForeignKey(
        Torrent, on_delete=models.CASCADE, related_name="history", db_index=False
    )
    uploaded = models.BigIntegerField(default=0)
    downloaded = models.BigIntegerField(default=0)
    seed_seconds = models.BigIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The last statistics flush that saw the member leech (left > 0) this torrent: a receipt's
    # downloader must have leeched around the receipt's time (receipts.services.reports).
    leeched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "torrent histories"
        constraints = [
            # The flush upserts on this pair (ON CONFLICT).
            models.UniqueConstraint(fields=["member", "torrent"], name="history_member_torrent"),
        ]
        indexes = [
            # Snatch counts per torrent.
            models.Index(fields=["torrent", "completed_at"], name="history_torrent_completed"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.torrent_id}"


class FreeleechToken(models.Model):
    """A bonus-store token: until ``expires_at`` the statistics flush credits ``member`` no
    download on ``torrent`` (``tracker.services.stats``); bought with
    ``tracker.services.bonus.bonus_store_buy`` (docs/bonus.md)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="freeleech_tokens", db_index=False
    )
    torrent = models.ForeignKey(
        Torrent, on_delete=models.CASCADE, related_name="freeleech_tokens", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-expires_at"]
        indexes = [
            # The flush's lookup of active tokens and "already active" (member, torrent, time).
            models.Index(fields=["member", "torrent", "expires_at"], name="fltoken_member_torrent"),
        ]

    def __str__(self) -> str:
        return f"freeleech token of {self.member_id} on {self.torrent_id}"


class BonusSeeding(models.Model):
    """What the bonus award already counted of a member's seeding of a torrent
    (``tracker.services.bonus.bonus_award_seeding``): ``counted_seconds`` of
    ``TorrentHistory.seed_seconds`` consumed, ``paid_seconds`` of them paid (at most the wall
    time since, plus ``allowance_seconds`` of slack), ``checked_at`` the last award."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="bonus_seeding", db_index=False
    )
    torrent = models.ForeignKey(
        Torrent, on_delete=models.CASCADE, related_name="bonus_seeding", db_index=False
    )
    counted_seconds = models.BigIntegerField(default=0)
    paid_seconds = models.BigIntegerField(default=0)
    allowance_seconds = models.BigIntegerField(default=0)
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The award upserts on this pair (ON CONFLICT).
            models.UniqueConstraint(fields=["member", "torrent"], name="bonus_seeding_pair"),
        ]

    def __str__(self) -> str:
        return f"bonus seeding of {self.member_id} on {self.torrent_id}"


class StatsFlush(models.Model):
    """One applied statistics batch; its id makes a re-run of the same batch a no-op."""

    batch_id = models.CharField(max_length=64, unique=True)
    members = models.PositiveIntegerField(default=0)
    torrents = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "statistics flush"
        verbose_name_plural = "statistics flushes"

    def __str__(self) -> str:
        return self.batch_id


# --- Hit-and-run (docs/hit-and-run.md) ------------------------------------------------------


class HitAndRunState(models.TextChoices):
    """Where a snatch stands with the hit-and-run rule (``tracker.services.hnr``).

    ``pending`` and ``hit_and_run`` are open (evaluated again by every run); ``satisfied``,
    ``forgiven`` and ``exempt`` are final."""

    PENDING = "pending", "Pending"
    SATISFIED = "satisfied", "Satisfied"
    HIT_AND_RUN = "hit_and_run", "Hit-and-run"
    FORGIVEN = "forgiven", "Forgiven"
    EXEMPT = "exempt", "Exempt"


class HitAndRun(models.Model):
    """The hit-and-run state of one snatch (a ``TorrentHistory`` with ``completed_at``).

    Written only by ``tracker.services.hnr``; ``member`` repeats ``history.member`` so the
    per-member count is read from this table alone.
    """

    history = models.OneToOneField(
        TorrentHistory, on_delete=models.CASCADE, related_name="hit_and_run"
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="hits_and_runs", db_index=False
    )
    state = models.CharField(
        max_length=16, choices=HitAndRunState.choices, default=HitAndRunState.PENDING
    )
    # When the state last changed away from pending (None while pending).
    resolved_at = models.DateTimeField(null=True, blank=True)
    forgiven_by = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    forgive_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "hit-and-run"
        indexes = [
            # A member's count and list ("hit_and_run" rows per member), the history page.
            models.Index(fields=["member", "state"], name="hnr_member_state"),
            # The open rows every evaluation run reads.
            models.Index(
                fields=["state"],
                name="hnr_open",
                condition=Q(state__in=["pending", "hit_and_run"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_state_display()}: {self.member_id} on history {self.history_id}"


# --- Browse: tags, bookmarks, feed keys (docs/browse-and-feeds.md) ---------------------------


def new_feed_key() -> str:
    """Return a fresh feed key: 32 URL-safe characters from ``secrets`` (192 bits). Not the
    passkey: it only reads feeds, and resetting one never touches the other."""
    return secrets.token_urlsafe(24)


class Tag(models.Model):
    """A torrent tag: a lower-case slug (``[a-z0-9-]``, at most ``TAG_MAX_LENGTH``
    characters), set by the uploader or staff (``tracker.services.browse.torrent_tags_set``).
    The many-to-many lives here so the torrent row is untouched."""

    name = models.SlugField(max_length=32, unique=True)
    torrents = models.ManyToManyField(Torrent, related_name="tags", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Bookmark(models.Model):
    """A member's bookmark of a torrent; private to the member (pages, API and feeds)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="bookmarks", db_index=False
    )
    torrent = models.ForeignKey(Torrent, on_delete=models.CASCADE, related_name="bookmarks")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One bookmark per member and torrent; also serves "my bookmarks" (member first).
            models.UniqueConstraint(fields=["member", "torrent"], name="bookmark_member_torrent"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} bookmarked {self.torrent_id}"


class FeedKey(models.Model):
    """A member's RSS/Atom feed key: it authenticates ``/feeds/<key>/...`` (a feed reader has
    no session). Made on first use, replaced by ``tracker.services.browse.feed_key_reset``."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="feed_key")
    key = models.CharField(max_length=64, unique=True, default=new_feed_key)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "feed key"

    def __str__(self) -> str:
        return f"feed key of {self.member_id}"


# --- Run-time configuration (docs/config.md) --------------------------------------------------


class RuntimeConfig(models.Model):
    """The tracker settings a moderator may change while the site runs (``POST /config``): one
    row (``pk=1``), written only by ``tracker.services.runtime_config.runtime_config_update``
    (audited). ``None`` in a field means "the setting's value" (``MIN_RATIO``, ``MAX_PEERS``,
    ``PBTS_RATIO_GRACE_BYTES``); no row at all means every setting applies. ``version`` grows by
    one on every change: each tracker process (the Django view, trackerd) compares it with the
    one it runs at most every ``PBTS_CONFIG_SECONDS`` and rebuilds its announce policy."""

    min_ratio = models.FloatField(null=True, blank=True)
    max_peers = models.PositiveIntegerField(null=True, blank=True)
    ratio_grace_bytes = models.BigIntegerField(null=True, blank=True)
    sitewide_freeleech = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "run-time configuration"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="runtime_config_singleton"),
            models.CheckConstraint(
                condition=Q(min_ratio__isnull=True) | Q(min_ratio__gte=0, min_ratio__lte=10),
                name="runtime_config_min_ratio_range",
            ),
            models.CheckConstraint(
                condition=Q(max_peers__isnull=True) | Q(max_peers__gte=1, max_peers__lte=200),
                name="runtime_config_max_peers_range",
            ),
            models.CheckConstraint(
                condition=Q(ratio_grace_bytes__isnull=True) | Q(ratio_grace_bytes__gte=0),
                name="runtime_config_grace_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"run-time configuration v{self.version}"
