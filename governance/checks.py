"""System checks: production must have the governance keys (``check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from governance import conf


@checks.register(checks.Tags.security, deploy=True)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from governance import crypto, keys

    errors: list[checks.CheckMessage] = []
    try:
        keys.signing_key()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="governance.E001"))
    try:
        crypto.keyring()
    except ImproperlyConfigured as exc:
        errors.append(checks.Error(str(exc), id="governance.E002"))
    return errors


@checks.register()
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    middleware = list(conf.setting("MIDDLEWARE", []))
    name = "governance.audit.AuditMiddleware"
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    if name not in middleware:
        return [
            checks.Warning(
                f"{name} is not in MIDDLEWARE: requests go unaudited", id="governance.W001"
            )
        ]
    if auth in middleware and middleware.index(name) < middleware.index(auth):
        return [checks.Error(f"{name} must come after {auth}", id="governance.E003")]
    return []
