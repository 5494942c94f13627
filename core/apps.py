"""The core app: what every PBTS app shares and no app owns alone."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Domain errors, the audit log, admin and DRF helpers, page helpers, bulk SQL."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Site"
