"""API v1 URLs, mounted at ``/api/v1/`` (namespace ``api``)."""

from django.urls import path, re_path

from tracker.api import bonus as bonus_api
from tracker.api import browse as browse_api
from tracker.api import history as history_api
from tracker.api import views

app_name = "api"

# Usernames as Django's default validator allows them (letters, digits and @ . + - _).
USERNAME = r"(?P<username>[\w.@+-]{1,150})"

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("me/passkey/reset/", views.PasskeyResetView.as_view(), name="passkey-reset"),
    path("me/token/reset/", views.TokenResetView.as_view(), name="token-reset"),
    path("me/delete/", views.AccountDeleteView.as_view(), name="me-delete"),
    path("me/history/", history_api.MeHistoryView.as_view(), name="me-history"),
    path("categories/", views.CategoryListView.as_view(), name="category-list"),
    path("torrents/", views.TorrentListCreateView.as_view(), name="torrent-list"),
    path("torrents/<int:pk>/", views.TorrentDetailView.as_view(), name="torrent-detail"),
    path("torrents/<int:pk>/files/", views.TorrentFileListView.as_view(), name="torrent-files"),
    path(
        "torrents/<int:pk>/peers/", browse_api.TorrentPeerListView.as_view(), name="torrent-peers"
    ),
    path(
        "torrents/<int:pk>/snatches/",
        browse_api.TorrentSnatchListView.as_view(),
        name="torrent-snatches",
    ),
    path("torrents/<int:pk>/tags/", browse_api.TorrentTagsView.as_view(), name="torrent-tags"),
    path(
        "torrents/<int:pk>/bookmark/",
        browse_api.TorrentBookmarkView.as_view(),
        name="torrent-bookmark",
    ),
    path("tags/", browse_api.TagListView.as_view(), name="tag-list"),
    path("bookmarks/", browse_api.BookmarkListView.as_view(), name="bookmark-list"),
    path(
        "torrents/<int:pk>/download/",
        views.TorrentDownloadView.as_view(),
        name="torrent-download",
    ),
    path(
        "torrents/<int:pk>/moderate/",
        views.TorrentModerateView.as_view(),
        name="torrent-moderate",
    ),
    path("bonus/", bonus_api.BonusView.as_view(), name="bonus"),
    path("bonus/spend/", bonus_api.BonusSpendView.as_view(), name="bonus-spend"),
    path("members/", views.MemberListView.as_view(), name="member-list"),
    re_path(
        rf"^members/{USERNAME}/history/$",
        history_api.MemberHistoryView.as_view(),
        name="member-history",
    ),
    re_path(
        rf"^members/{USERNAME}/hit-and-runs/(?P<pk>[0-9]{{1,18}})/forgive/$",
        views.HitAndRunForgiveView.as_view(),
        name="member-hnr-forgive",
    ),
    re_path(rf"^members/{USERNAME}/ban/$", views.MemberBanView.as_view(), name="member-ban"),
    re_path(rf"^members/{USERNAME}/unban/$", views.MemberUnbanView.as_view(), name="member-unban"),
]
