from django.apps import AppConfig


class ChainConfig(AppConfig):
    """The web3 client and the Reputation contract sync."""

    name = "chain"
    verbose_name = "Chain"

    def ready(self) -> None:
        """Register the Celery tasks in every process (web, worker, commands), so services
        queue them by name (``chain.services.migration`` never imports ``chain.tasks``)."""
        from chain import tasks  # noqa: F401

        _register_mydata()


def _register_mydata() -> None:
    """Add the chain section to "Export my data" (``core.mydata``)."""
    from chain import mydata

    mydata.register()
