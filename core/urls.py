"""Page URLs of the core app (plain names, like the tracker's): notifications and the
data export."""

from django.urls import path

from core import mydata_views, notification_views

urlpatterns = [
    path("notifications/", notification_views.notification_list_page, name="notifications"),
    path(
        "notifications/read/", notification_views.notification_mark_read, name="notifications_read"
    ),
    path(
        "notifications/settings/",
        notification_views.notification_settings,
        name="notifications_settings",
    ),
    path("profile/export/", mydata_views.mydata_export, name="mydata_export"),
]
