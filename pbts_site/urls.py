"""Root URL configuration: pages, the JSON API, the OpenAPI schema, admin and health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tracker import announce_views
from tracker.health import health

urlpatterns = [
    path("health", health, name="health"),
    path("announce/<str:passkey>", announce_views.announce, name="announce"),
    path("announce", announce_views.announce, name="announce-query"),
    path("scrape/<str:passkey>", announce_views.scrape, name="scrape"),
    path("scrape", announce_views.scrape, name="scrape-query"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracker.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("tracker.urls")),
]
