"""Test settings: the real PostgreSQL and Redis of the machine, fast password hashing.

``DATABASE_URL`` and ``REDIS_URL`` default to the local services (127.0.0.1); a test run that
cannot reach them fails loudly (see ``conftest.py``), it never falls back to SQLite.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/pbts")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("PBTS_REDIS_PREFIX", f"pbts-test-{os.getpid()}")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("PBTS_SECURE", "false")
# A checkout's local .env (written by `make run`) must not change what the tests run with.
os.environ.setdefault("DEBUG", "false")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"upload": None, "credentials": None, "reports": None},
}
PBTS_INPROCESS_FLUSH = False
PBTS_COUNTS_SECONDS = 0.0  # every flush writes counts; tests of the cadence override it
PBTS_TRACKER_THREAD = False
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Tests log staff in with force_login (no second factor); tests of two-factor authentication turn
# the staff rule on with override_settings (tracker/tests/test_two_factor.py).
PBTS_STAFF_REQUIRE_2FA = False
