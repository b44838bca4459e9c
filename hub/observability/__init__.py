"""Prometheus metrics and request ids of the hub's processes (docs/deploy.md, Observability).

Thin adapters only: the web middleware and ``/metrics`` view, the web launcher's chores that
serve the workers' merged metrics on ``METRICS_PORT`` (``launcher``), the Celery signal
handlers, the consumer's metrics. Business code does not import this package; it is wired in
settings, ``hub.serve``, ``hub.celery`` and ``manage.py consume``.
"""
