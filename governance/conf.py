"""Governance settings, read lazily from ``django.conf.settings`` with safe defaults.

Governance never imports ``hub`` (import-linter contract), so the hospital and unit models are
named by swappable-model style strings ("app_label.ModelName") and resolved only when needed:
the hub's registry may not be loaded yet when this module is imported.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

DEFAULT_HOSPITAL_MODEL = "registry.Hospital"
DEFAULT_UNIT_MODEL = "registry.Unit"


def setting(name: str, default: Any = None) -> Any:
    return getattr(settings, name, default)


def _model(setting_name: str, default: str) -> type[models.Model]:
    label = setting(setting_name, default)
    try:
        return apps.get_model(label, require_ready=False)
    except (LookupError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{setting_name} = {label!r} does not name an installed model"
        ) from exc


def hospital_model() -> type[models.Model]:
    """The model whose rows are hospitals (``GOVERNANCE_HOSPITAL_MODEL``)."""
    return _model("GOVERNANCE_HOSPITAL_MODEL", DEFAULT_HOSPITAL_MODEL)


def unit_model() -> type[models.Model]:
    """The model whose rows are units: ED, wards, ICU, theatres (``GOVERNANCE_UNIT_MODEL``)."""
    return _model("GOVERNANCE_UNIT_MODEL", DEFAULT_UNIT_MODEL)


def unit_hospital_field() -> str:
    """The unit model's foreign key to its hospital."""
    return str(setting("GOVERNANCE_UNIT_HOSPITAL_FIELD", "hospital"))


def ed_unit_filter() -> Mapping[str, Any]:
    """Lookups that pick a hospital's emergency-department units out of the unit model."""
    return dict(setting("GOVERNANCE_ED_UNIT_FILTER", {"unit_type": "emergency"}))


def secret(name: str) -> str | None:
    """A secret from the setting ``name``, else env ``NAME`` / file named by ``NAME_FILE``.

    Governance cannot use ``hub.env``; this is the same rule in a few lines so a key can be
    mounted as a Kubernetes Secret file and never appear in an environment listing.
    """
    value = setting(name)
    if value:
        return str(value).strip()
    value = os.environ.get(name)
    if value:
        return value.strip()
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def b64_key(text: str, *, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{what}: not valid base64") from None
    if len(raw) != size:
        raise ImproperlyConfigured(f"{what}: expected {size} raw bytes, got {len(raw)}")
    return raw
