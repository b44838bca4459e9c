"""Prometheus metrics and request ids of the hub's processes (docs/deploy.md, Observability).

Thin adapters only: the web middleware and ``/metrics`` view, the gunicorn hooks that serve
the workers' merged metrics on ``METRICS_PORT``, the Celery signal handlers, the consumer's
metrics. Business code does not import this package; it is wired in settings, the gunicorn
config, ``hub.celery`` and ``manage.py consume``.
"""
