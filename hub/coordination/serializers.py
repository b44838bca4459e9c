"""Small input and output serializers of the coordination API."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from hub.coordination import models as m
from hub.registry.models import Hospital, Region


class _Hospital(serializers.SlugRelatedField[Hospital]):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "site_code")
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)


class RecommendationSerializer(serializers.ModelSerializer[m.DiversionRecommendation]):
    hospital = _Hospital()
    region: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    # ``figures_as_of``: when the stored figures were first seen with these values (a renewal
    # that changes none keeps them); ``region_evaluated_at``: the region's last evaluation.
    region_evaluated_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = m.DiversionRecommendation
        fields: ClassVar = [
            "id",
            "region",
            "hospital",
            "mode",
            "status",
            "score",
            "routes",
            "kept",
            "explanation",
            "figures",
            "no_forecast",
            "state",
            "created_at",
            "renewed_at",
            "figures_as_of",
            "region_evaluated_at",
            "expires_at",
            "closed_at",
        ]


class DecisionSerializer(serializers.ModelSerializer[m.DiversionDecision]):
    hospital = _Hospital()
    decided_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    closed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    ems_traffic = serializers.CharField(read_only=True)

    class Meta:
        model = m.DiversionDecision
        fields: ClassVar = [
            "id",
            "hospital",
            "recommendation",
            "action",
            "status",
            "ems_traffic",
            "routes",
            "reason",
            "decided_by",
            "decided_at",
            "expires_at",
            "renewals",
            "state",
            "closed_at",
            "closed_by",
            "close_reason",
            "directive",
        ]


class AcceptInput(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    ttl_minutes = serializers.FloatField(required=False, min_value=1, max_value=1440)


class RouteInput(serializers.Serializer[Any]):
    destination = serializers.CharField(max_length=32)
    ambulance_class = serializers.CharField(max_length=32, default="general")


class OverrideInput(serializers.Serializer[Any]):
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=m.DiversionStatus.choices)
    routes = RouteInput(many=True, required=False)
    ttl_minutes = serializers.FloatField(required=False, min_value=1, max_value=1440)


class RenewInput(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    ttl_minutes = serializers.FloatField(required=False, min_value=1, max_value=1440)


class ReasonInput(serializers.Serializer[Any]):
    reason = serializers.CharField()


class StatusSerializer(serializers.ModelSerializer[m.HospitalStatus]):
    hospital = _Hospital()

    class Meta:
        model = m.HospitalStatus
        fields: ClassVar = [
            "id",
            "hospital",
            "diversion_status",
            "status_since",
            "expires_at",
            "destinations",
            "pressure",
            "fresh",
            "surge_level",
            "surge_score",
            "level_since",
            "evaluated_at",
        ]


class SurgeChangeSerializer(serializers.ModelSerializer[m.SurgeLevelChange]):
    hospital = _Hospital()
    region: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    # Read through the change's reference to its stored checklist (``SurgeChecklist``).
    checklist = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = m.SurgeLevelChange
        fields: ClassVar = [
            "id",
            "region",
            "hospital",
            "from_level",
            "to_level",
            "score",
            "causes",
            "readings",
            "checklist",
            "explanation",
            "at",
        ]


class AlertSerializer(serializers.ModelSerializer[m.Alert]):
    hospital = _Hospital()
    acknowledged_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = m.Alert
        fields: ClassVar = [
            "id",
            "hospital",
            "key",
            "kind",
            "severity",
            "title",
            "message",
            "figures",
            "condition",
            "state",
            "raised_at",
            "opened_at",
            "last_seen_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledge_note",
            "resolved_at",
            "escalation_level",
            "history",
        ]

    def to_representation(self, instance: m.Alert) -> Any:
        data = super().to_representation(instance)
        # A live condition alert was last seen at its region's last evaluation (``seen_at``):
        # from the list's annotation (``selectors.alerts``), else read once per region.
        evaluated: Any = getattr(instance, "region_evaluated_at", _UNREAD)
        if evaluated is _UNREAD:
            known = self.__dict__.setdefault("_evaluated_at", {})
            if instance.region_id not in known:
                known[instance.region_id] = (
                    m.RegionState.objects.filter(region_id=instance.region_id)
                    .values_list("evaluated_at", flat=True)
                    .first()
                )
            evaluated = known[instance.region_id]
        data["last_seen_at"] = self.fields["last_seen_at"].to_representation(
            instance.seen_at(evaluated)
        )
        return data


_UNREAD = object()


class AcknowledgeInput(serializers.Serializer[Any]):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class OfferSerializer(serializers.ModelSerializer[m.ResourceOffer]):
    donor = _Hospital()

    class Meta:
        model = m.ResourceOffer
        fields: ClassVar = ["id", "donor", "quantity", "note", "state", "offered_at"]


class RequestEventSerializer(serializers.ModelSerializer[m.ResourceRequestEvent]):
    actor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = m.ResourceRequestEvent
        fields: ClassVar = ["from_status", "to_status", "actor", "at", "note", "detail"]


class ResourceRequestSerializer(serializers.ModelSerializer[m.ResourceRequest]):
    requester = _Hospital()
    offers = OfferSerializer(many=True, read_only=True)
    events = RequestEventSerializer(many=True, read_only=True)

    class Meta:
        model = m.ResourceRequest
        fields: ClassVar = [
            "id",
            "requester",
            "kind",
            "item",
            "quantity",
            "shift",
            "needed_by",
            "note",
            "status",
            "suggestions",
            "suggested_at",
            "offers",
            "events",
            "created_at",
            "updated_at",
        ]


class ResourceRequestInput(serializers.Serializer[Any]):
    requester = serializers.SlugRelatedField(
        slug_field="site_code", queryset=Hospital.objects.filter(active=True)
    )
    kind = serializers.ChoiceField(choices=m.ResourceKind.choices)
    item = serializers.CharField(max_length=64)
    quantity = serializers.FloatField(min_value=0.001)
    shift = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    needed_by = serializers.DateTimeField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class OfferInput(serializers.Serializer[Any]):
    donor = serializers.SlugRelatedField(
        slug_field="site_code", queryset=Hospital.objects.filter(active=True)
    )
    quantity = serializers.FloatField(min_value=0.001)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class AcceptOfferInput(serializers.Serializer[Any]):
    offer = serializers.IntegerField()
    note = serializers.CharField(required=False, allow_blank=True, default="")


class NoteInput(serializers.Serializer[Any]):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class AvailabilitySerializer(serializers.ModelSerializer[m.ResourceAvailability]):
    hospital = _Hospital()

    class Meta:
        model = m.ResourceAvailability
        fields: ClassVar = ["id", "hospital", "kind", "item", "quantity", "shift", "as_of", "note"]


class AvailabilityInput(serializers.Serializer[Any]):
    hospital = serializers.SlugRelatedField(
        slug_field="site_code", queryset=Hospital.objects.filter(active=True)
    )
    kind = serializers.ChoiceField(
        choices=[c for c in m.ResourceKind.choices if c[0] != m.ResourceKind.BED]
    )
    item = serializers.CharField(max_length=64)
    quantity = serializers.FloatField(min_value=0)
    shift = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RegionStateSerializer(serializers.ModelSerializer[m.RegionState]):
    region: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )

    class Meta:
        model = m.RegionState
        fields: ClassVar = [
            "region",
            "mode",
            "surge_level",
            "surge_score",
            "level_since",
            "hospitals",
            "fresh",
            "would_close",
            "evaluated_at",
            "evaluation_ms",
        ]


class SettingsInput(serializers.Serializer[Any]):
    config = serializers.JSONField()
