"""The hub's web server: ``python -m hub.serve`` runs hub.wsgi under granian with the
workers' Prometheus metrics served by the launcher (docs/deploy.md, "The web server").

One command for the demo (scripts/demo), the load benchmarks (bench/hubrun.py), the image and
the Helm chart, so what was measured is what is deployed. ``options`` reads the settings,
``server`` builds and runs granian's multi-process server, ``access`` writes the access line
with the request id; the metrics side lives in hub.observability.launcher.
"""
