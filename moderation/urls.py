"""Page URLs of the moderation app (namespace ``moderation``), mounted at the site root."""

from django.urls import path

from moderation import views

app_name = "moderation"

urlpatterns = [
    path("stats/", views.stats, name="stats"),
    path("moderation/queue/", views.queue, name="queue"),
    path(
        "moderation/queue/<int:pk>/approve/",
        views.queue_decide,
        {"decision": "approve"},
        name="queue_approve",
    ),
    path(
        "moderation/queue/<int:pk>/reject/",
        views.queue_decide,
        {"decision": "reject"},
        name="queue_reject",
    ),
    path("moderation/reports/", views.report_list, name="report_list"),
    path("moderation/reports/<int:pk>/", views.report_detail, name="report_detail"),
    path("moderation/report/torrent/<int:pk>/", views.report_torrent, name="report_torrent"),
    path("moderation/report/member/<str:username>/", views.report_member, name="report_member"),
    path("moderation/members/<str:username>/", views.member_moderate, name="member"),
    path("moderation/members/<str:username>/invites/", views.invite_tree, name="invite_tree"),
    path("moderation/warnings/<int:pk>/revoke/", views.warning_revoke, name="warning_revoke"),
]
