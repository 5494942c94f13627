"""Moderation models: reports, warnings, staff notes and class locks.

Models stay thin: fields, constraints and indexes. Rules live in ``moderation/services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ReportCategory(models.TextChoices):
    """Why a member reports a torrent or another member."""

    RULES = "rules", "Breaks the rules"
    FAKE = "fake", "Fake, broken or mislabelled torrent"
    DUPLICATE = "duplicate", "Duplicate"
    ABUSE = "abuse", "Abuse or harassment"
    CHEATING = "cheating", "Cheating (ratio, client)"
    SPAM = "spam", "Spam"
    OTHER = "other", "Other"


class ReportStatus(models.TextChoices):
    """Staff workflow: open -> claimed (by a moderator) -> resolved or dismissed."""

    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


OPEN_STATUSES = (ReportStatus.OPEN, ReportStatus.CLAIMED)


class Report(models.Model):
    """A member's report of a torrent or of another member: exactly one target is set."""

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_filed"
    )
    torrent = models.ForeignKey(
        "tracker.Torrent", null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reports_about",
    )
    category = models.CharField(max_length=16, choices=ReportCategory.choices)
    text = models.TextField()
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.OPEN
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports_claimed",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports_resolved",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(torrent__isnull=False, member__isnull=True)
                | Q(torrent__isnull=True, member__isnull=False),
                name="report_one_target",
            ),
            # One open (or claimed) report per reporter and target.
            models.UniqueConstraint(
                fields=["reporter", "torrent"],
                condition=Q(status__in=["open", "claimed"], torrent__isnull=False),
                name="report_one_open_per_torrent",
            ),
            models.UniqueConstraint(
                fields=["reporter", "member"],
                condition=Q(status__in=["open", "claimed"], member__isnull=False),
                name="report_one_open_per_member",
            ),
        ]
        indexes = [
            # The staff reports page: one status, oldest first.
            models.Index(fields=["status", "created_at"], name="report_status_created"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.status})"

    @property
    def target_label(self) -> str:
        """``torrent <name>`` or ``member <username>``."""
        if self.torrent_id is not None:
            return f"torrent {self.torrent}"
        return f"member {self.member}"


class MemberWarning(models.Model):
    """A staff warning to a member. Active while not revoked and ``expires_at`` is ahead: the
    state is computed from the time, no job has to expire it."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="warnings"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="warnings_issued",
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="warnings_revoked",
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "warning"
        indexes = [
            # A member's active warnings (profile, count).
            models.Index(fields=["member", "expires_at"], name="warning_member_expires"),
        ]

    def __str__(self) -> str:
        return f"warning {self.pk} of {self.member_id}"


class StaffNote(models.Model):
    """A staff-only note on a member; never shown to the member, nor to other members."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="staff_notes_written",
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["member", "-created_at"], name="staffnote_member")]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.member_id}"


class ClassLock(models.Model):
    """A manual class override: the automatic class rules never change this member's class."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="class_lock",
    )
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="class_locks_set",
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"class lock of {self.member_id}"
