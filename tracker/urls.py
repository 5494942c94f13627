"""Page URLs of the tracker app (server-rendered, no JavaScript needed).

Names are plain, not namespaced: settings use ``LOGIN_URL = "login"`` and
``LOGIN_REDIRECT_URL = "home"``, and Django's auth views reverse their own plain names
(``password_reset_done``, ``password_change_done``, ...).
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from core.views import member_required
from tracker.views import accounts, bookmarks, feeds, pages, password_reset, torrents, two_factor
from tracker.views import bonus as bonus_views
from tracker.views import history as history_views
from tracker.views import mydata as mydata_views
from tracker.views import password_change as password_change_views

urlpatterns = [
    path("", pages.home, name="home"),
    path("pages/<slug:slug>/", pages.site_page, name="site_page"),
    # Torrents.
    path("torrents/", torrents.torrent_list, name="torrent_list"),
    path("torrents/<int:pk>/", torrents.torrent_detail, name="torrent_detail"),
    path("torrents/<int:pk>/download/", torrents.torrent_download, name="torrent_download"),
    path("upload/", torrents.torrent_upload, name="torrent_upload"),
    path("bonus/", bonus_views.bonus_page, name="bonus"),
    path("torrents/<int:pk>/tags/", torrents.torrent_tags, name="torrent_tags"),
    path("torrents/<int:pk>/bookmark/", bookmarks.bookmark_toggle_view, name="bookmark_toggle"),
    # Bookmarks and feeds (docs/browse-and-feeds.md).
    path("bookmarks/", bookmarks.bookmark_list, name="bookmark_list"),
    path("feeds/", feeds.feed_page, name="feed_list"),
    path("feeds/reset/", feeds.feed_key_reset_view, name="feed_key_reset"),
    path("feeds/<str:key>/rss/", feeds.FEEDS[("rss", "all")], name="feed_rss"),
    path("feeds/<str:key>/atom/", feeds.FEEDS[("atom", "all")], name="feed_atom"),
    path(
        "feeds/<str:key>/rss/category/<slug:slug>/",
        feeds.FEEDS[("rss", "category")],
        name="feed_rss_category",
    ),
    path(
        "feeds/<str:key>/atom/category/<slug:slug>/",
        feeds.FEEDS[("atom", "category")],
        name="feed_atom_category",
    ),
    path(
        "feeds/<str:key>/rss/bookmarks/",
        feeds.FEEDS[("rss", "bookmarks")],
        name="feed_rss_bookmarks",
    ),
    path(
        "feeds/<str:key>/atom/bookmarks/",
        feeds.FEEDS[("atom", "bookmarks")],
        name="feed_atom_bookmarks",
    ),
    path("feeds/<str:key>/download/<int:pk>/", feeds.feed_download, name="feed_download"),
    # Members.
    path("profile/", accounts.profile, name="profile"),
    path("profile/delete/", mydata_views.account_delete, name="account_delete"),
    path("profile/security/", accounts.security, name="security"),
    path("profile/security/passkey/", accounts.passkey_reset, name="passkey_reset"),
    path("profile/security/api-token/", accounts.api_token_reset, name="api_token_reset"),
    path("members/<str:username>/", accounts.member_detail, name="member_detail"),
    # History and hit-and-runs (docs/hit-and-run.md).
    path("history/", history_views.my_history, name="history"),
    path(
        "members/<str:username>/history/",
        history_views.member_history_page,
        name="member_history",
    ),
    path("hnr/<int:pk>/forgive/", history_views.hnr_forgive_view, name="hnr_forgive"),
    path("invites/", accounts.invite_list, name="invite_list"),
    path("invites/<int:pk>/revoke/", accounts.invite_revoke, name="invite_revoke"),
    path("register/", accounts.register, name="register"),
    # Authentication (templates in templates/registration/).
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("login/verify/", two_factor.login_verify, name="login_verify"),
    path("profile/security/two-factor/", two_factor.setup, name="two_factor_setup"),
    path(
        "profile/security/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("profile/security/two-factor/disable/", two_factor.disable, name="two_factor_disable"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        member_required(password_change_views.ThrottledPasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "password/change/done/",
        member_required(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    path("password/reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
