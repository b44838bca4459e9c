"""Small input and output serializers, one pair per endpoint where they differ."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance import chain
from governance.models import (
    AuditEvent,
    ErasureRequest,
    PolicyDecision,
    RetentionRun,
    SharingPolicy,
)


class AuditEventOut(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = list(chain.EVENT_FIELDS)  # noqa: RUF012 (DRF reads a plain list)
        read_only_fields = fields


class AuditFilterIn(serializers.Serializer[Any]):
    actor_id = serializers.IntegerField(required=False)
    actor = serializers.CharField(required=False, max_length=150)
    action = serializers.CharField(required=False, max_length=64)
    hospital_id = serializers.IntegerField(required=False)
    request_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class VerifyOut(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    first_bad_id = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField()
    unlinked = serializers.IntegerField()
    checkpoints_checked = serializers.IntegerField()
    checkpoint_problems = serializers.ListField(child=serializers.CharField())


class PolicyDecisionOut(serializers.ModelSerializer[PolicyDecision]):
    class Meta:
        model = PolicyDecision
        fields = ["member_label", "decision", "comment", "decided_at"]  # noqa: RUF012
        read_only_fields = fields


class PolicyOut(serializers.ModelSerializer[SharingPolicy]):
    decisions = PolicyDecisionOut(many=True, read_only=True)

    class Meta:
        model = SharingPolicy
        fields = [  # noqa: RUF012
            "id",
            "hospital_id",
            "site_code",
            "version",
            "status",
            "document",
            "note",
            "effective_at",
            "created_at",
            "submitted_at",
            "approved_at",
            "published_at",
            "key_id",
            "decisions",
        ]
        read_only_fields = fields


class PolicyCreateIn(serializers.Serializer[Any]):
    hospital_id = serializers.IntegerField()
    document = serializers.JSONField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    effective_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PolicyUpdateIn(serializers.Serializer[Any]):
    document = serializers.JSONField(required=False)
    note = serializers.CharField(required=False, allow_blank=True)
    effective_at = serializers.DateTimeField(required=False)


class DecisionIn(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class PublishIn(serializers.Serializer[Any]):
    effective_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PreviewOut(serializers.Serializer[Any]):
    records_in = serializers.IntegerField()
    released = serializers.DictField(child=serializers.IntegerField())
    held = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    suppressed_records = serializers.IntegerField()
    suppressed_cells = serializers.IntegerField()
    samples = serializers.DictField(child=serializers.ListField(child=serializers.DictField()))


class ChangeOut(serializers.Serializer[Any]):
    path = serializers.CharField()
    kind = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class DiffIn(serializers.Serializer[Any]):
    against = serializers.IntegerField(required=False, help_text="version; default previous")


class DiffOut(serializers.Serializer[Any]):
    from_version = serializers.IntegerField(allow_null=True)
    to_version = serializers.IntegerField()
    changes = ChangeOut(many=True)


class ErasureOut(serializers.ModelSerializer[ErasureRequest]):
    """Never the surrogate: once received, the request is named by its id."""

    class Meta:
        model = ErasureRequest
        fields = [  # noqa: RUF012
            "id",
            "hospital_id",
            "site_code",
            "origin",
            "status",
            "received_at",
            "due_at",
            "approved_at",
            "approved_by_label",
            "executed_at",
            "deleted_counts",
            "directive_id",
            "confirmed_at",
            "closed_at",
            "site_evidence",
        ]
        read_only_fields = fields


class ErasureCreateIn(serializers.Serializer[Any]):
    hospital_id = serializers.IntegerField()
    surrogate_id = serializers.CharField(max_length=128)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SiteErasureCreateIn(serializers.Serializer[Any]):
    surrogate_id = serializers.CharField(max_length=128)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class RejectIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class ConfirmIn(serializers.Serializer[Any]):
    evidence = serializers.DictField()


class RetentionRunOut(serializers.ModelSerializer[RetentionRun]):
    class Meta:
        model = RetentionRun
        fields = [  # noqa: RUF012
            "id",
            "started_at",
            "finished_at",
            "as_of",
            "dry_run",
            "actor_label",
            "report",
        ]
        read_only_fields = fields


class RetentionRunIn(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField(default=True)
