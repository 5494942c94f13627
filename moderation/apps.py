from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Reports, warnings, staff notes, the upload queue, class promotion and site statistics."""

    name = "moderation"
    verbose_name = "Moderation"
