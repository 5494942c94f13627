from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    """BLS keys, signed piece receipts and their batch verification."""

    name = "receipts"
    verbose_name = "Receipts"
