"""Core API v1 URLs, mounted at ``/api/v1/`` (namespace ``core_api``): notifications and the
member's data export."""

from django.urls import path

from core.api import mydata, notifications

app_name = "core_api"

urlpatterns = [
    path(
        "notifications/",
        notifications.NotificationListView.as_view(),
        name="notification-list",
    ),
    path(
        "notifications/read/",
        notifications.NotificationMarkReadView.as_view(),
        name="notification-read",
    ),
    path("me/export/", mydata.MyDataExportView.as_view(), name="me-export"),
]
