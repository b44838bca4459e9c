"""Fixtures for governance tests: hospitals and units of the configured scoping models, users
per role, and throw-away keys.

Hospitals and units are built through ``governance.conf`` (never by importing the hub), so the
same tests run against whatever ``GOVERNANCE_HOSPITAL_MODEL`` names.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from deid import signing
from governance import access, conf
from governance.roles import Role

_seq = itertools.count(1)


def make_hospital(**fields: Any) -> models.Model:
    hospital_model = conf.hospital_model()
    n = next(_seq)
    region_field = hospital_model._meta.get_field(conf.setting("GOVERNANCE_HOSPITAL_REGION_FIELD"))
    region_model: Any = region_field.related_model
    region, _ = region_model._default_manager.get_or_create(
        code="test-region", defaults={"name": "Synthetic test region"}
    )
    values = {
        region_field.name: region,
        "site_code": f"SITE{n:04d}",
        "name": f"Synthetic General {n}",
    }
    values.update(fields)
    return hospital_model._default_manager.create(**values)


def make_unit(hospital: models.Model, unit_type: str = "medical_surgical", **fields: Any) -> Any:
    values: dict[str, Any] = {
        conf.unit_hospital_field(): hospital,
        "code": f"U{next(_seq):04d}",
        "name": f"Synthetic {unit_type} unit",
        "unit_type": unit_type,
    }
    values.update(fields)
    return conf.unit_model()._default_manager.create(**values)


@dataclass
class Region:
    """Two synthetic hospitals, each with an ED and two wards."""

    a: Any
    b: Any
    a_ed: Any
    a_ward: Any
    a_ward2: Any
    b_ed: Any
    b_ward: Any


@pytest.fixture
def region(db: None) -> Region:
    a, b = make_hospital(), make_hospital()
    return Region(
        a=a,
        b=b,
        a_ed=make_unit(a, "emergency"),
        a_ward=make_unit(a),
        a_ward2=make_unit(a, "adult_icu"),
        b_ed=make_unit(b, "emergency"),
        b_ward=make_unit(b),
    )


UserFactory = Callable[..., Any]


@pytest.fixture
def make_user(db: None) -> UserFactory:
    def factory(
        role: Role | None = None, *, hospital: Any = None, unit: Any = None, superuser: bool = False
    ) -> AbstractBaseUser:
        n = next(_seq)
        user_model = get_user_model()
        user = user_model._default_manager.create_user(
            username=f"user{n}-{role or 'none'}", password=None, is_superuser=superuser
        )
        if role is not None:
            if role in access.REGION_WIDE:
                access.assign_role(user, role)
            if hospital is not None:
                access.grant_hospital(user, hospital, role)
            if unit is not None:
                access.grant_unit(user, unit, role)
        return user

    return factory


def user_for(make_user: UserFactory, role: Role, region: Region, own: bool = True) -> Any:
    """A user of ``role`` whose own hospital is A (own=True) — the usual grant per role."""
    hospital = region.a
    if role in access.REGION_WIDE:
        return make_user(role)
    if role is Role.WARD_NURSE:
        return make_user(role, unit=region.a_ward)
    return make_user(role, hospital=hospital)


@pytest.fixture
def signing_key_b64() -> str:
    return signing.private_key_b64(signing.generate_signing_key())


@pytest.fixture
def governance_keys(settings: Any, signing_key_b64: str) -> None:
    """Throw-away signing and field keys (never the environment's)."""
    settings.GOVERNANCE_SIGNING_KEY = signing_key_b64
    settings.GOVERNANCE_FIELD_KEYS = "1:" + base64.b64encode(os.urandom(32)).decode()
    settings.GOVERNANCE_FIELD_KEY_VERSION = 0
    return
