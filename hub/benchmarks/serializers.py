"""Output and input serializers of the benchmarks API."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from hub.benchmarks.models import HospitalKpi, PeriodKind, UnitLosKpi
from hub.benchmarks.services import KPI_FIELDS
from hub.registry.models import Hospital


class KpiSerializer(serializers.ModelSerializer[HospitalKpi]):
    hospital: serializers.SlugRelatedField[Hospital] = serializers.SlugRelatedField(
        slug_field="site_code", read_only=True
    )

    class Meta:
        model = HospitalKpi
        fields: ClassVar = [
            "id",
            "hospital",
            "period",
            "period_start",
            "peer_group",
            *KPI_FIELDS,
            "suppressed",
            "computed_at",
        ]


class UnitLosSerializer(serializers.ModelSerializer[UnitLosKpi]):
    hospital: serializers.SlugRelatedField[Hospital] = serializers.SlugRelatedField(
        slug_field="site_code", read_only=True
    )

    class Meta:
        model = UnitLosKpi
        fields: ClassVar = [
            "id",
            "hospital",
            "unit_type",
            "period",
            "period_start",
            "stays",
            "los_median_days",
            "los_mean_days",
            "suppressed",
        ]


class KpiFilter(serializers.Serializer[Any]):
    period = serializers.ChoiceField(choices=PeriodKind.choices, required=False)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    hospital = serializers.CharField(required=False)


class PeerInput(serializers.Serializer[Any]):
    period = serializers.ChoiceField(choices=PeriodKind.choices, default=PeriodKind.MONTH)
    period_start = serializers.DateField(required=False)
    metric = serializers.ChoiceField(choices=KPI_FIELDS, default="within_4h_share")


class RefreshInput(serializers.Serializer[Any]):
    period = serializers.ChoiceField(choices=PeriodKind.choices)
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
