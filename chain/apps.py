from django.apps import AppConfig


class ChainConfig(AppConfig):
    """The web3 client and the Reputation contract sync."""

    name = "chain"
    verbose_name = "Chain"

    def ready(self) -> None:
        """Register the Celery tasks in every process (web, worker, commands), so services
        queue them by name (``chain.services.migration`` never imports ``chain.tasks``)."""
        from chain import tasks  # noqa: F401
