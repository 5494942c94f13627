"""The member's chain API, under /api/v1/."""

from django.urls import path

from chain.api import views

app_name = "chain-api"

urlpatterns = [
    path("chain/me", views.MyChainView.as_view(), name="me"),
    path("chain/migrations", views.MigrationCreateView.as_view(), name="migration-create"),
    path("chain/migrations/<int:pk>", views.MigrationDetailView.as_view(), name="migration-detail"),
    path(
        "chain/migrations/<int:pk>/signature",
        views.MigrationSignView.as_view(),
        name="migration-sign",
    ),
]
