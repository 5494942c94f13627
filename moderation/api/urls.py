"""API v1 URLs of the moderation app, mounted at ``/api/v1/moderation/`` (namespace
``moderation-api``)."""

from django.urls import path, re_path

from moderation.api import views

app_name = "moderation-api"

# Usernames as Django's default validator allows them (letters, digits and @ . + - _).
USERNAME = r"(?P<username>[\w.@+-]{1,150})"

urlpatterns = [
    path("reports/", views.ReportListCreateView.as_view(), name="report-list"),
    path("reports/<int:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
    path("reports/<int:pk>/claim/", views.ReportClaimView.as_view(), name="report-claim"),
    path("reports/<int:pk>/resolve/", views.ReportResolveView.as_view(), name="report-resolve"),
    re_path(
        rf"^members/{USERNAME}/warnings/$",
        views.MemberWarningListCreateView.as_view(),
        name="member-warnings",
    ),
    re_path(
        rf"^members/{USERNAME}/notes/$",
        views.MemberNoteListCreateView.as_view(),
        name="member-notes",
    ),
    path("warnings/<int:pk>/revoke/", views.WarningRevokeView.as_view(), name="warning-revoke"),
    path("stats/", views.SiteStatsView.as_view(), name="stats"),
]
