"""A task that proves the worker and broker path works end to end."""

from celery import shared_task


@shared_task(name="health.ping")
def ping(value: str) -> str:
    return f"pong:{value}"
