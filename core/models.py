"""The one model every app writes: the append-only audit log of staff actions."""

from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """Append-only record of staff actions with old and new values (secrets masked)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="audit_actions",
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=255)
    old_values = models.JSONField(default=dict)
    new_values = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table keeps its name from when the model lived in the tracker app.
        db_table = "tracker_auditlog"
        ordering = ["-created_at"]
        indexes = [
            # Admin: a target's history.
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_repr}"


class Notification(models.Model):
    """A message to one member: a torrent approved or rejected, an invite used, a warning.

    ``kind`` is a short slug naming the event (``torrent_approved``, ``invite_used``, ...);
    ``subject`` a one-line title and ``body`` plain text (never HTML: templates escape it);
    ``url`` an optional site-relative link (``/torrents/12/``). ``read_at`` is null until the
    member marks it read. Written only by ``core.notifications``.
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.SlugField(max_length=64)
    subject = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The list: a member's notifications, newest first.
            models.Index(fields=["member", "-created_at"], name="notification_member_created"),
            # The header badge: a member's unread count.
            models.Index(
                fields=["member"],
                condition=models.Q(read_at__isnull=True),
                name="notification_member_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.member_id}: {self.subject}"


class NotificationSettings(models.Model):
    """A member's notification preferences; a missing row means the defaults (no e-mail)."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email_enabled = models.BooleanField(
        default=False, help_text="Also send each notification to the member's e-mail address."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"notification settings of {self.member_id}"
