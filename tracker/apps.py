from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """Members, passkeys, invites, torrents, client whitelist, announce/scrape."""

    name = "tracker"
    verbose_name = "Tracker"

    def ready(self) -> None:
        """Register the tracker sections of "Export my data" (``tracker.mydata``)."""
        from tracker import mydata

        mydata.register()
