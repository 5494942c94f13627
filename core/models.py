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
