"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    """Expose the site's name to templates as ``site_name``."""
    return {"site_name": settings.PBTS_SITE_NAME}
