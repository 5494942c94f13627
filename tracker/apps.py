from django.apps import AppConfig


class TrackerConfig(AppConfig):
    """Members, passkeys, invites, torrents, client whitelist, announce/scrape."""

    name = "tracker"
    verbose_name = "Tracker"
