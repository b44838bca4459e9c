"""The Celery app: tasks are thin interfaces to services, discovered in each app's tasks.py."""

import os

from celery import Celery

from hub.observability import celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Task durations and failures by task name, served by the worker on METRICS_PORT.
celery_signals.connect()
