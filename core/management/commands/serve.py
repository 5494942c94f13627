"""``manage.py serve``: Django's ``runserver`` (with static files) plus the embedded beat."""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand

from core import embedded_beat


class Command(RunserverCommand):
    """``runserver`` that also runs the periodic tasks of ``CELERY_BEAT_SCHEDULE`` in a thread
    when there is no Celery broker (``core.embedded_beat``; ``make run`` uses it). Same
    arguments as ``runserver``."""

    help = "Serve the site (runserver) and, without a Celery broker, run the periodic tasks."

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Start the embedded beat (once), then serve."""
        if embedded_beat.start():
            self.stdout.write(
                "Periodic tasks (hit-and-runs, bonus points, ...) run in this process."
            )
            self.stdout.flush()  # before serving, also when stdout is a file or a pipe
        super().inner_run(*args, **options)
