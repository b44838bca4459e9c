"""Objects for the permission matrix: governance's models, and the configured hospital and
unit models (one object per hospital/unit the matrix asks for)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone

from governance import audit, conf, policies
from governance.models import ErasureRequest, RetentionRun, SharingPolicy
from governance.testing import register_matrix_factory


def _label(model_getter: Any) -> str:
    try:
        return str(model_getter()._meta.label)
    except Exception:  # the scoping models are not installed: nothing to register
        return "-"


@register_matrix_factory(_label(conf.hospital_model))
def hospital(hospital: Any, unit: Any) -> models.Model:
    return hospital


@register_matrix_factory(_label(conf.unit_model))
def unit(hospital: Any, unit: Any) -> models.Model:
    return unit


@register_matrix_factory("governance.SharingPolicy")
def sharing_policy(hospital: Any, unit: Any) -> models.Model:
    latest = SharingPolicy.objects.filter(hospital_id=hospital.pk).order_by("-version").first()
    return SharingPolicy.objects.create(
        hospital_id=hospital.pk,
        site_code=hospital.site_code,
        version=(latest.version + 1) if latest else 1,
        document=policies.template(),
    )


@register_matrix_factory("governance.ErasureRequest")
def erasure_request(hospital: Any, unit: Any) -> models.Model:
    surrogate = f"sg-matrix-{uuid.uuid4().hex}"
    now = timezone.now()
    erasure = ErasureRequest(
        hospital_id=hospital.pk,
        site_code=hospital.site_code,
        surrogate_id=surrogate,
        surrogate_digest=uuid.uuid4().hex,
        origin=ErasureRequest.Origin.BOARD,
        received_at=now,
        due_at=now + timedelta(days=30),
    )
    erasure.save(force_insert=True)
    return erasure


@register_matrix_factory("governance.AuditEvent")
def audit_event(hospital: Any, unit: Any) -> models.Model:
    return audit.record(actor=None, action="matrix.probe", hospital_ids=[hospital.pk])


@register_matrix_factory("governance.RetentionRun")
def retention_run(hospital: Any, unit: Any) -> models.Model:
    return RetentionRun.objects.create(as_of=timezone.now(), dry_run=True)
