from django.apps import AppConfig


class ReputationConfig(AppConfig):
    """The per-member ledger, ratio policy and portable reputation."""

    name = "reputation"
    verbose_name = "Reputation"
