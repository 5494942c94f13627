from django.apps import AppConfig


class ChainConfig(AppConfig):
    """The web3 client and the Reputation contract sync."""

    name = "chain"
    verbose_name = "Chain"
