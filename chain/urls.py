"""The original PBTS contract endpoints (/contract/...) and the profile's migration forms."""

from django.urls import path

from chain import views
from chain.api import views as api_views

app_name = "chain"

urlpatterns = [
    path("contract/status", api_views.StatusView.as_view(), name="status"),
    path("contract/user/<str:name>", api_views.UserView.as_view(), name="user"),
    path("contract/init", api_views.InitView.as_view(), name="init"),
    path("contract/register", api_views.RegisterView.as_view(), name="register"),
    path("contract/update", api_views.UpdateView.as_view(), name="update"),
    path("contract/migrate", api_views.MigrateView.as_view(), name="migrate"),
    path("chain/migration", views.migration_request, name="migration-request"),
    path("chain/migration/<int:pk>/sign", views.migration_sign, name="migration-sign"),
]
