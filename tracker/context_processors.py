"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, str]:
    """Expose the site's name (``PBTS_SITE_NAME``) to templates as ``site_brand``.

    Not ``site_name``: Django's auth views (login, password reset) put the request's host into
    ``site_name`` and a view's context wins over a context processor's, so those pages showed
    "127.0.0.1:8000" as the site's name.
    """
    return {"site_brand": settings.PBTS_SITE_NAME}
