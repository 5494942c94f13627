from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    """BLS keys, signed piece receipts and their batch verification."""

    name = "receipts"
    verbose_name = "Receipts"

    def ready(self) -> None:
        """Register the system checks of the receipt settings."""
        from receipts import checks  # noqa: F401
