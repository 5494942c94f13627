"""Root URL configuration: pages, the JSON API, the OpenAPI schema, admin and health.

The original PBTS receipt paths (``/register``, ``/report``, ``/report/<id>``, ``/attest``,
``/keygen``) are served by the receipts API views, authenticated by API token.
"""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from chain.api.site_config import ConfigView
from receipts.api import views as receipts_views
from tracker import announce_views
from tracker.health import health

urlpatterns = [
    path("health", health, name="health"),
    # Browsers ask for /favicon.ico on every page that names no icon (the admin, API docs).
    path("favicon.ico", RedirectView.as_view(url=static("tracker/favicon.svg"), permanent=True)),
    path("announce/<str:passkey>", announce_views.announce, name="announce"),
    path("announce", announce_views.announce, name="announce-query"),
    path("scrape/<str:passkey>", announce_views.scrape, name="scrape"),
    path("scrape", announce_views.scrape, name="scrape-query"),
    path("register", receipts_views.RegisterView.as_view(), name="receipts-register"),
    path("report", receipts_views.ReportCreateView.as_view(), name="receipts-report"),
    path(
        "report/<int:pk>",
        receipts_views.ReportDetailView.as_view(),
        name="receipts-report-detail",
    ),
    path("attest", receipts_views.AttestView.as_view(), name="receipts-attest"),
    path("keygen", receipts_views.KeygenView.as_view(), name="receipts-keygen"),
    path("config", ConfigView.as_view(), name="config"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracker.api.urls")),
    path("api/v1/", include("receipts.api.urls")),
    path("api/v1/", include("chain.api.urls")),
    path("api/v1/moderation/", include("moderation.api.urls")),
    path("api/v1/", include("core.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads Swagger UI's init script from /api/docs/?script (no inline script,
    # for the Content-Security-Policy); templates/drf_spectacular/ drops the inline style.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("chain.urls")),
    path("", include("moderation.urls")),
    path("", include("tracker.urls")),
    path("", include("core.urls")),
]
