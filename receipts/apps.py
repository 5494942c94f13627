from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    """BLS keys, signed piece receipts and their batch verification."""

    name = "receipts"
    verbose_name = "Receipts"

    def ready(self) -> None:
        """Register the system checks of the receipt settings."""
        from receipts import checks  # noqa: F401

        _register_mydata()


def _register_mydata() -> None:
    """Add the receipts section to "Export my data" (``core.mydata``)."""
    from receipts import mydata

    mydata.register()
