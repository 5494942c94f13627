"""Celery application for PBTS.

Reads every ``CELERY_*`` Django setting and autodiscovers ``tasks.py`` in the installed apps.
With no ``CELERY_BROKER_URL`` set the settings make tasks run inline (``task_always_eager``),
so the embedded default needs no worker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbts_site.settings")

app = Celery("pbts_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
