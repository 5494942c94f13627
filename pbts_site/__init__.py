"""PBTS site project package; exposes the Celery app so tasks register at startup."""

from .celery import app as celery_app

__all__ = ("celery_app",)
