"""PBTS settings, read from the environment through django-environ.

With no environment the site runs on the embedded default: an SQLite file, the local-memory
cache, the in-process peer store and Celery tasks run inline. ``DATABASE_URL`` (PostgreSQL via
psycopg 3), ``REDIS_URL`` (cache and peer store) and ``CELERY_BROKER_URL`` switch to the real
services. Every knob is listed in ``.env.example``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Local settings: `.env` beside manage.py (written by `make run` for the embedded default), or
# the file PBTS_ENV_FILE names. Variables already in the environment win over the file.
ENV_FILE = Path(env.str("PBTS_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: run `make run` once (it writes a local .env with DEBUG=true and"
        " a generated key), or set SECRET_KEY in the environment or in .env (.env.example)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "core.apps.AdminSiteConfig",  # django.contrib.admin with core.admin_site.PBTSAdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "csp",
    "axes",
    "django_otp",  # two-factor authentication (core.two_factor, docs/two-factor.md)
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "core",
    "tracker",
    "receipts",
    "reputation",
    "chain",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): second factor given
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.BannedSessionMiddleware",
    "core.middleware.StaffTwoFactorMiddleware",  # staff pages need the second factor
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]
# Login lockout first (django-axes, see core.auth), then the password check.
AUTHENTICATION_BACKENDS = [
    "core.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "pbts_site.urls"
WSGI_APPLICATION = "pbts_site.wsgi.application"
AUTH_USER_MODEL = "tracker.Member"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tracker.context_processors.site",
                "core.context_processors.notifications",  # the header's unread count
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Prefix of every Redis key the site writes (cache and peer store).
PBTS_REDIS_PREFIX = env.str("PBTS_REDIS_PREFIX", default="pbts")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": PBTS_REDIS_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="pbts@localhost")

# Security: on by default whenever DEBUG is off (``check --deploy`` reports nothing).
PBTS_SECURE = env.bool("PBTS_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = PBTS_SECURE
# Health probes and BitTorrent clients get their answer where they asked, never a redirect.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^announce", r"^scrape"]
SESSION_COOKIE_SECURE = PBTS_SECURE
CSRF_COOKIE_SECURE = PBTS_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PBTS_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PBTS_SECURE
SECURE_HSTS_PRELOAD = PBTS_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("PBTS_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.IsMemberInGoodStanding"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "upload": "30/hour",
        "credentials": "10/hour",
        "reports": env.str("PBTS_REPORT_THROTTLE", default="120/hour"),
    },
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PBTS API",
    "DESCRIPTION": "Private BitTorrent tracker with verifiable reputation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from the drf-spectacular-sidecar package: /api/docs/ works offline and
    # under a Content-Security-Policy that allows only this site's own scripts.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Names of the choice sets of fields called "status" (the moderation API's and the torrents'),
# which would otherwise collide.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update(
    {
        "TorrentStatusEnum": "tracker.models.TorrentStatus",
        "ModerationReportStatusEnum": "moderation.models.ReportStatus",
        "ModerationReportCloseStatusEnum": "moderation.api.serializers.CLOSE_STATUS_CHOICES",
        "ModerationReportListStatusEnum": "moderation.api.serializers.LIST_STATUS_CHOICES",
        "ModerationWarningStateEnum": "moderation.api.serializers.WARNING_STATE_CHOICES",
        # The bonus store's items (tracker.services.bonus UPLOAD, FREELEECH), named once.
        "BonusStoreItemEnum": ["upload", "freeleech"],
    }
)

# Every handler masks passkeys, API tokens, invite codes and set-password links
# (core.logging.SecretMaskFilter). Django's own default handlers are replaced: "django" logs
# through the root handler (its default console and mail_admins handlers would print and mail
# request paths unmasked) and "django.server" (runserver's request lines) gets a masking
# handler. Gunicorn's logs: gunicorn.conf.py.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"secrets": {"()": "core.logging.SecretMaskFilter"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}

# Login lockout (django-axes; core.auth): after PBTS_LOGIN_FAILURE_LIMIT failed logins for one
# username from one client address, that pair is refused for PBTS_LOGIN_COOLOFF_MINUTES (the
# site's login and the admin's). Counted per username *and* address, so nobody can lock a member
# out from elsewhere; attempts are kept in the database (axes' tables, admin for superusers).
AXES_FAILURE_LIMIT = env.int("PBTS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("PBTS_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
AXES_LOCKOUT_CALLABLE = "core.auth.lockout_response"
# Two-factor authentication (TOTP + recovery codes, django-otp; core.two_factor,
# docs/two-factor.md). Staff (is_staff or superuser) must enrol and verify each session before
# any admin page or staff API endpoint answers; members may enrol. Tokens shown to authenticator
# apps name the site.
PBTS_STAFF_REQUIRE_2FA = env.bool("PBTS_STAFF_REQUIRE_2FA", default=True)
OTP_TOTP_ISSUER = env.str("PBTS_SITE_NAME", default="PBTS")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- PBTS knobs (all listed in .env.example) -------------------------------------------
PBTS_SITE_NAME = env.str("PBTS_SITE_NAME", default="PBTS")
# Base URL of the site as torrent clients reach it; announce URLs and torrent comments use it.
PBTS_BASE_URL = env.str("PBTS_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Value of the info dict's ``source`` key after the upload rewrite (changes the info_hash).
PBTS_TORRENT_SOURCE = env.str("PBTS_TORRENT_SOURCE", default=PBTS_SITE_NAME)
PBTS_MAX_TORRENT_BYTES = env.int("PBTS_MAX_TORRENT_BYTES", default=10 * 1024 * 1024)
# Most files (BEP 3 `files` entries, padding left out) and deepest bencode nesting (lists and
# dictionaries) an uploaded .torrent may have; 100 levels is libtorrent's own decode limit.
PBTS_MAX_TORRENT_FILES = env.int("PBTS_MAX_TORRENT_FILES", default=10_000)
PBTS_MAX_BENCODE_DEPTH = env.int("PBTS_MAX_BENCODE_DEPTH", default=100)
# Longest torrent description accepted, in characters (line breaks count one).
PBTS_DESCRIPTION_MAX_CHARS = env.int("PBTS_DESCRIPTION_MAX_CHARS", default=20_000)
# Browse and feeds (docs/browse-and-feeds.md): most tags on a torrent; items in one RSS/Atom feed.
PBTS_MAX_TAGS = env.int("PBTS_MAX_TAGS", default=10)
PBTS_FEED_ITEMS = env.int("PBTS_FEED_ITEMS", default=50)
# Images in descriptions and site pages: "refuse" keeps only this site's own (relative or
# PBTS_BASE_URL's origin; others become their alt text), "allow" lets members' browsers fetch
# any http(s) image (and the Content-Security-Policy allows them).
PBTS_REMOTE_IMAGES = env.str("PBTS_REMOTE_IMAGES", default="refuse")
if PBTS_REMOTE_IMAGES not in ("refuse", "allow"):
    raise ImproperlyConfigured('PBTS_REMOTE_IMAGES must be "refuse" or "allow".')
# Content-Security-Policy on every response (django-csp): scripts, styles and images from this
# site only (images also as data: URLs, which the admin's and Swagger UI's stylesheets use, and
# from any http(s) site with PBTS_REMOTE_IMAGES=allow); no plugins, no <base>, forms post here
# only, no page may be framed. No inline script or style anywhere (templates/drf_spectacular/).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *(["http:", "https:"] if PBTS_REMOTE_IMAGES == "allow" else [])],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
PBTS_UPLOADS_NEED_APPROVAL = env.bool("PBTS_UPLOADS_NEED_APPROVAL", default=False)
# Who approves uploads (docs/moderation.md): "auto" (approved at once), "staff" (every upload
# pending until staff approve it), "trusted" (staff and members of PBTS_UPLOAD_TRUSTED_CLASSES
# approved at once, others pending). PBTS_UPLOADS_NEED_APPROVAL=true, the old switch, is an
# alias of "staff" (it wins over "auto").
PBTS_UPLOAD_APPROVAL = env.str("PBTS_UPLOAD_APPROVAL", default="auto")
if PBTS_UPLOAD_APPROVAL not in ("auto", "staff", "trusted"):
    raise ImproperlyConfigured('PBTS_UPLOAD_APPROVAL must be "auto", "staff" or "trusted".')
PBTS_UPLOAD_TRUSTED_CLASSES = env.list("PBTS_UPLOAD_TRUSTED_CLASSES", default=["uploader", "vip"])
PBTS_INVITE_DAYS = env.int("PBTS_INVITE_DAYS", default=7)
PBTS_NEW_MEMBER_INVITES = env.int("PBTS_NEW_MEMBER_INVITES", default=0)
PBTS_OWNER_USERNAME = env.str("PBTS_OWNER_USERNAME", default="owner")
PBTS_OWNER_EMAIL = env.str("PBTS_OWNER_EMAIL", default="owner@localhost")
PBTS_OWNER_PASSWORD = env.str("PBTS_OWNER_PASSWORD", default="")
PBTS_AUTH_CACHE_SECONDS = env.int("PBTS_AUTH_CACHE_SECONDS", default=300)
# How often (seconds) each tracker process checks the run-time configuration (POST /config).
PBTS_CONFIG_SECONDS = env.float("PBTS_CONFIG_SECONDS", default=5.0)
# trackerd: unknown passkeys and info_hashes remembered (an LRU of this many, each this long).
PBTS_NEGATIVE_CACHE_SIZE = env.int("PBTS_NEGATIVE_CACHE_SIZE", default=10000)
PBTS_NEGATIVE_CACHE_SECONDS = env.int("PBTS_NEGATIVE_CACHE_SECONDS", default=60)
# Password-reset requests per hour from one client address, and for one name typed (0: none).
PBTS_PASSWORD_RESET_PER_HOUR = env.int("PBTS_PASSWORD_RESET_PER_HOUR", default=5)
MIN_RATIO = env.float("MIN_RATIO", default=0.5)
PBTS_RATIO_GRACE_BYTES = env.int("PBTS_RATIO_GRACE_BYTES", default=5 * 1024**3)
# Figures imported from a predecessor site by a chain migration (docs/chain.md) count for the
# ratio rule: upload (at most the cap, bytes, 0: no cap; the imported download is scaled by
# the same factor) and download (both sides by default, so an import cannot bring the good
# side only).
PBTS_IMPORTED_UPLOAD_COUNTS = env.bool("PBTS_IMPORTED_UPLOAD_COUNTS", default=True)
PBTS_IMPORTED_DOWNLOAD_COUNTS = env.bool("PBTS_IMPORTED_DOWNLOAD_COUNTS", default=True)
PBTS_IMPORTED_UPLOAD_CAP_BYTES = env.int("PBTS_IMPORTED_UPLOAD_CAP_BYTES", default=100 * 1024**3)
MAX_PEERS = env.int("MAX_PEERS", default=50)
# Announce (seconds unless noted). Clients re-announce every interval (+ up to 10% jitter).
PBTS_ANNOUNCE_INTERVAL = env.int("PBTS_ANNOUNCE_INTERVAL", default=1800)
PBTS_ANNOUNCE_MIN_INTERVAL = env.int("PBTS_ANNOUNCE_MIN_INTERVAL", default=900)
PBTS_MAX_PEERS_PER_MEMBER = env.int("PBTS_MAX_PEERS_PER_MEMBER", default=3)
# Peers silent for this long are reaped.
PBTS_PEER_TIMEOUT = env.int("PBTS_PEER_TIMEOUT", default=2 * PBTS_ANNOUNCE_INTERVAL + 300)
# How often announce credits are flushed to the database.
PBTS_FLUSH_SECONDS = env.float("PBTS_FLUSH_SECONDS", default=3.0)
# How often torrents' seeders and leechers are written to the database (pages and the API read
# them there; announce and scrape replies are live). Snatches are written every flush.
PBTS_COUNTS_SECONDS = env.float("PBTS_COUNTS_SECONDS", default=15.0)
# How often each process shares its peer changes through Redis and reads the others'.
PBTS_SYNC_SECONDS = env.float("PBTS_SYNC_SECONDS", default=0.5)
# Reverse proxies whose X-Forwarded-For is believed (IP addresses); no one else's is.
PBTS_TRUSTED_PROXIES = env.list("PBTS_TRUSTED_PROXIES", default=[])
# Ports refused in announces (other P2P networks); empty value: the built-in list.
PBTS_BLACKLISTED_PORTS = env.list("PBTS_BLACKLISTED_PORTS", cast=int, default=[])
# UDP tracker (BEP 15, docs/announce.md) served by trackerd on this port; 0: off (and no
# udp:// URL in downloaded .torrent files).
PBTS_UDP_PORT = env.int("PBTS_UDP_PORT", default=6969)
# Base of the UDP announce URL as clients reach it, e.g. "udp://tracker.example:6969"; empty:
# PBTS_BASE_URL's host with PBTS_UDP_PORT. A member's URL is <base>/announce/<passkey>.
PBTS_UDP_ANNOUNCE_URL = env.str("PBTS_UDP_ANNOUNCE_URL", default="").rstrip("/")
# Key of the stateless UDP connection ids (environment only, never logged); empty: derived
# from SECRET_KEY. After a rotation the old value goes in PBTS_UDP_PREVIOUS_SECRET.
PBTS_UDP_SECRET = env.str("PBTS_UDP_SECRET", default="")
PBTS_UDP_PREVIOUS_SECRET = env.str("PBTS_UDP_PREVIOUS_SECRET", default="")
# UDP connect requests answered per source address and minute (token bucket; 0: no limit).
PBTS_UDP_CONNECTS_PER_MINUTE = env.int("PBTS_UDP_CONNECTS_PER_MINUTE", default=300)
# Run the statistics flush in a thread of the web process (the embedded default, where Celery
# runs inline); with a broker, Celery beat does it.
PBTS_INPROCESS_FLUSH = env.bool("PBTS_INPROCESS_FLUSH", default=not CELERY_BROKER_URL)
# Without a broker there is no beat process either: `manage.py serve` (make run) runs the tasks
# of CELERY_BEAT_SCHEDULE in a thread of the web process (core.embedded_beat).
PBTS_EMBEDDED_BEAT = env.bool("PBTS_EMBEDDED_BEAT", default=not CELERY_BROKER_URL)
# Receipts (docs/receipts.md). BLS backend: "blst" (pyblst, fast) or "py_ecc" (reference).
PBTS_BLS_BACKEND = env.str("PBTS_BLS_BACKEND", default="blst")
# This site's realm id (64 hex); empty: derived from PBTS_SITE_NAME and PBTS_BASE_URL.
PBTS_REALM_ID = env.str("PBTS_REALM_ID", default="")
# Receipts older than this (seconds) are refused; and more than this many time buckets ahead.
PBTS_RECEIPT_WINDOW_SECONDS = env.int("PBTS_RECEIPT_WINDOW_SECONDS", default=7 * 86400)
PBTS_RECEIPT_FUTURE_BUCKETS = env.int("PBTS_RECEIPT_FUTURE_BUCKETS", default=1)
# How far (seconds) a receipt's time may lie outside the downloader's seen-in-swarm span.
PBTS_RECEIPT_PRESENCE_SLACK_SECONDS = env.int(
    "PBTS_RECEIPT_PRESENCE_SLACK_SECONDS", default=PBTS_PEER_TIMEOUT
)
PBTS_REPORT_MAX_RECEIPTS = env.int("PBTS_REPORT_MAX_RECEIPTS", default=4096)
# The fastest transfer the site believes, bytes per second (1 Gbit/s): receipts credit one
# member at most this x 60 s per time bucket.
PBTS_MAX_CREDIT_RATE = env.int("PBTS_MAX_CREDIT_RATE", default=125_000_000)
# Receipts (messages) one verification run claims at most, and the beat period (seconds).
PBTS_VERIFY_BATCH_SIZE = env.int("PBTS_VERIFY_BATCH_SIZE", default=1024)
PBTS_VERIFY_SECONDS = env.float("PBTS_VERIFY_SECONDS", default=5.0)
# /keygen makes a key pair on the server: a demo for development only, never in production.
PBTS_DEV_KEYGEN = env.bool("PBTS_DEV_KEYGEN", default=False)
# Admin flags a member whose announced upload exceeds FACTOR x verified upload + BYTES.
PBTS_UPLOAD_GAP_FACTOR = env.float("PBTS_UPLOAD_GAP_FACTOR", default=2.0)
PBTS_UPLOAD_GAP_BYTES = env.int("PBTS_UPLOAD_GAP_BYTES", default=1024**3)
# Bonus points (docs/bonus.md). Points per hour of seeding one torrent:
# BASE x (1 + SIZE_FACTOR x log2(1 + size in GiB)) x (1 + RARITY_FACTOR / seeders)
#      x (1 + AGE_FACTOR x min(age in days / AGE_FULL_DAYS, 1)).
PBTS_BONUS_BASE_PER_HOUR = env.float("PBTS_BONUS_BASE_PER_HOUR", default=1.0)
PBTS_BONUS_SIZE_FACTOR = env.float("PBTS_BONUS_SIZE_FACTOR", default=0.5)
PBTS_BONUS_RARITY_FACTOR = env.float("PBTS_BONUS_RARITY_FACTOR", default=1.0)
PBTS_BONUS_AGE_FACTOR = env.float("PBTS_BONUS_AGE_FACTOR", default=0.5)
PBTS_BONUS_AGE_FULL_DAYS = env.float("PBTS_BONUS_AGE_FULL_DAYS", default=180.0)
# Seeding of one torrent is paid for at most the wall-clock time since the last award plus this
# slack (seconds); the award runs every PBTS_BONUS_AWARD_SECONDS from Celery beat.
PBTS_BONUS_SLACK_SECONDS = env.int("PBTS_BONUS_SLACK_SECONDS", default=3600)
PBTS_BONUS_AWARD_SECONDS = env.float("PBTS_BONUS_AWARD_SECONDS", default=600.0)
# The store: GiB of upload credit (site ratio only) for COST points; a freeleech token for
# TOKEN_COST points lasts TOKEN_HOURS.
PBTS_BONUS_UPLOAD_GIB = env.float("PBTS_BONUS_UPLOAD_GIB", default=1.0)
PBTS_BONUS_UPLOAD_COST = env.float("PBTS_BONUS_UPLOAD_COST", default=100.0)
PBTS_BONUS_TOKEN_COST = env.float("PBTS_BONUS_TOKEN_COST", default=250.0)
PBTS_BONUS_TOKEN_HOURS = env.float("PBTS_BONUS_TOKEN_HOURS", default=24.0)
# Chain (docs/chain.md). RPC endpoint and the site account's private key: environment only,
# never logged or shown; unset, chain features say "not configured". Contract addresses live in
# the database (chain.ChainConfig).
PBTS_CHAIN_RPC_URL = env.str("PBTS_CHAIN_RPC_URL", default="")
PBTS_CHAIN_PRIVATE_KEY = env.str("PBTS_CHAIN_PRIVATE_KEY", default="")
# Expected chain id (0: accept the endpoint's at deployment, then pinned in the database).
PBTS_CHAIN_ID = env.int("PBTS_CHAIN_ID", default=0)
# Seconds between pushes of changed members; members per transaction (at most 100).
PBTS_CHAIN_PUSH_SECONDS = env.float("PBTS_CHAIN_PUSH_SECONDS", default=30.0)
PBTS_CHAIN_BATCH_SIZE = env.int("PBTS_CHAIN_BATCH_SIZE", default=100)
# Seconds to wait for a receipt before leaving a transaction to the next run's reconciliation.
PBTS_CHAIN_RECEIPT_TIMEOUT = env.float("PBTS_CHAIN_RECEIPT_TIMEOUT", default=120.0)
# Hit-and-run rule (docs/hit-and-run.md): every snatch must within the window be seeded for
# the hours OR reach the ratio on that torrent (uploaded / the larger of its downloaded and the
# torrent's size); unmet once window + grace have passed, it is a hit-and-run. A member with
# WARN_AFTER of them is warned, with DISABLE_AFTER of them may not leech until the count falls
# again (0: never). SEED_HOURS 0 or RATIO 0 turns that way of meeting the rule off.
PBTS_HNR_ENABLED = env.bool("PBTS_HNR_ENABLED", default=True)
PBTS_HNR_SEED_HOURS = env.float("PBTS_HNR_SEED_HOURS", default=72.0)
PBTS_HNR_RATIO = env.float("PBTS_HNR_RATIO", default=1.0)
PBTS_HNR_WINDOW_DAYS = env.float("PBTS_HNR_WINDOW_DAYS", default=14.0)
PBTS_HNR_GRACE_HOURS = env.float("PBTS_HNR_GRACE_HOURS", default=2.0)
PBTS_HNR_WARN_AFTER = env.int("PBTS_HNR_WARN_AFTER", default=1)
PBTS_HNR_DISABLE_AFTER = env.int("PBTS_HNR_DISABLE_AFTER", default=3)
PBTS_HNR_SECONDS = env.float("PBTS_HNR_SECONDS", default=900.0)  # beat period of the evaluation
# Moderation (docs/moderation.md). Reports: most a member files per hour, longest text.
PBTS_REPORTS_PER_HOUR = env.int("PBTS_REPORTS_PER_HOUR", default=10)
PBTS_REPORT_TEXT_MAX_CHARS = env.int("PBTS_REPORT_TEXT_MAX_CHARS", default=2000)
# Longest warning, in days; the statistics page is cached this many seconds.
PBTS_WARNING_MAX_DAYS = env.int("PBTS_WARNING_MAX_DAYS", default=365)
PBTS_STATS_CACHE_SECONDS = env.int("PBTS_STATS_CACHE_SECONDS", default=60)
# A member counts as active on the statistics page after a login in this many days.
PBTS_STATS_ACTIVE_DAYS = env.int("PBTS_STATS_ACTIVE_DAYS", default=30)
# Automatic class promotion: the ladder, lowest first after "user". A member gets the highest
# class whose minimums (uploaded bytes, ratio, account age in days) they meet; a member above
# that keeps their class until their ratio falls below its demote_ratio. Classes outside the
# ladder (vip, uploader), staff and members with a class lock are never changed.
PBTS_CLASS_RULES = env.json(
    "PBTS_CLASS_RULES",
    default=[
        {
            "class": "power_user",
            "min_uploaded": 25 * 1024**3,
            "min_ratio": 1.05,
            "min_age_days": 28,
            "demote_ratio": 0.95,
        },
        {
            "class": "elite",
            "min_uploaded": 100 * 1024**3,
            "min_ratio": 1.5,
            "min_age_days": 91,
            "demote_ratio": 1.3,
        },
    ],
)
PBTS_CLASS_RULES_SECONDS = env.float("PBTS_CLASS_RULES_SECONDS", default=3600.0)
# Every periodic task, in one place.
CELERY_BEAT_SCHEDULE = {
    "tracker.evaluate_hit_and_runs": {
        "task": "tracker.evaluate_hit_and_runs",
        "schedule": PBTS_HNR_SECONDS,
    },
    "tracker.flush_stats": {"task": "tracker.flush_stats", "schedule": PBTS_FLUSH_SECONDS},
    "receipts.verify_receipts": {
        "task": "receipts.verify_receipts",
        "schedule": PBTS_VERIFY_SECONDS,
    },
    "chain.push_members": {"task": "chain.push_members", "schedule": PBTS_CHAIN_PUSH_SECONDS},
    "tracker.award_bonus": {"task": "tracker.award_bonus", "schedule": PBTS_BONUS_AWARD_SECONDS},
    "moderation.apply_class_rules": {
        "task": "moderation.apply_class_rules",
        "schedule": PBTS_CLASS_RULES_SECONDS,
    },
}
# The per-process background thread that shares peers and flushes (tests drive it by hand).
PBTS_TRACKER_THREAD = env.bool("PBTS_TRACKER_THREAD", default=True)
