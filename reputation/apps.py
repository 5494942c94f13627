from django.apps import AppConfig


class ReputationConfig(AppConfig):
    """The per-member ledger, ratio policy and portable reputation."""

    name = "reputation"
    verbose_name = "Reputation"

    def ready(self) -> None:
        """Register the reputation sections of "Export my data" (``reputation.mydata``)."""
        from reputation import mydata

        mydata.register()
