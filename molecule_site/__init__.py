"""Project package: settings, URL map, ASGI entry point and the Celery app."""

from molecule_site.celery import app as celery_app

__all__ = ["celery_app"]
