"""Celery application for PBTS.

Reads every ``CELERY_*`` Django setting and autodiscovers ``tasks.py`` in the installed apps.
With no ``CELERY_BROKER_URL`` set the settings make tasks run inline (``task_always_eager``),
so the embedded default needs no worker. The worker's log handlers (Celery installs its own)
mask secrets like every Django handler (``core.logging``).
"""

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from core.logging import SecretMaskFilter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbts_site.settings")

app = Celery("pbts_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def mask_secrets_in_worker_logs(logger: logging.Logger, **kwargs: object) -> None:
    """Put :class:`~core.logging.SecretMaskFilter` on every handler Celery set up."""
    for handler in logger.handlers:
        if not any(isinstance(f, SecretMaskFilter) for f in handler.filters):
            handler.addFilter(SecretMaskFilter())
