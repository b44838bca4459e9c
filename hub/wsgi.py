"""WSGI entry point (``python -m hub.serve`` runs it under granian)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

application = get_wsgi_application()

# Django imports the URLconf (and with it every view module, DRF and the schema generator)
# on a worker's first request: 2.5 s measured, paid by whichever request reaches a fresh
# worker first. Import it now, while the server boots the worker, before it accepts anything.
get_resolver().url_patterns  # noqa: B018
