"""Django settings of the experiments harness: a throw-away SQLite file, no services.

The harness must never touch a developer's data, whatever the shell or ``.env`` says: before
importing this module it sets ``PBTS_EXPERIMENTS_DB`` to a file in a fresh temporary folder,
and this module *overwrites* (not ``setdefault``) every variable that would point the site at
a database, a cache, a broker or a local ``.env`` file. Only a fresh clone's defaults remain:
SQLite, the in-process cache, Celery tasks run inline.
"""

import os
import secrets
from pathlib import Path

_DB = os.environ.get("PBTS_EXPERIMENTS_DB", "")
if not _DB:
    raise RuntimeError(
        "experiments.settings is the harness's own settings module: run "
        "experiments/run_experiments.py, which points PBTS_EXPERIMENTS_DB at a temporary file."
    )
os.environ.update(
    {
        "DATABASE_URL": f"sqlite:///{_DB}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        # A file that does not exist: the checkout's .env is not read.
        "PBTS_ENV_FILE": str(Path(_DB).with_suffix(".no-env")),
        "SECRET_KEY": "experiments-" + secrets.token_urlsafe(40),
        "DEBUG": "false",
        "PBTS_SECURE": "false",
        "PBTS_UPLOAD_APPROVAL": "auto",
        "PBTS_UPLOADS_NEED_APPROVAL": "false",
    }
)

from pbts_site.settings import *  # noqa: E402, F403

# Measure the API, not its rate limits (the same override as pbts_site/settings_test.py).
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"upload": None, "credentials": None, "reports": None},
}
CELERY_TASK_ALWAYS_EAGER = True
PBTS_INPROCESS_FLUSH = False
PBTS_TRACKER_THREAD = False
PBTS_STAFF_REQUIRE_2FA = False
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405  (django.test.Client's host)


class _NoMigrations(dict):
    """Every app "has no migrations": ``migrate --run-syncdb`` creates the tables straight from
    the models, about 1 s instead of 15-35 s of replayed migrations on this box. The harness
    loads its own data, so the seed data migrations are not needed."""

    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _NoMigrations()
# Static files from the apps' folders (no collectstatic in a temporary run), as in
# pbts_site/settings_test.py.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
