"""The regional hub: a Django project that receives only de-identified records."""

from hub.celery import app as celery_app

__all__ = ["celery_app"]
