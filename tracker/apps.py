from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """Members, passkeys, invites, torrents, client whitelist, announce/scrape."""

    name = "tracker"
    verbose_name = "Tracker"

    def ready(self) -> None:
        """Register the tracker sections of "Export my data" (``tracker.mydata``), and make
        the ledger's ratio rule read the thresholds staff set at run time (``/config``)."""
        from reputation import selectors
        from tracker import mydata, runtime_config

        mydata.register()
        selectors.ratio_thresholds = runtime_config.ratio_thresholds
