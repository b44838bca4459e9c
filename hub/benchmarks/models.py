"""Stored KPIs: one row per hospital, period kind and period start (and unit type for
inpatient length of stay). Computed by ``services.kpis_refresh`` from de-identified data
(``kpis`` has the definitions); rows with too few cases behind them keep their count hidden
and ``suppressed`` set, per the hospital's sharing policy."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from hub.registry.models import UNIT_TYPE_CHOICES, Hospital


class PeriodKind(models.TextChoices):
    DAY = "day", "day"
    WEEK = "week", "week (ISO, from Monday)"
    MONTH = "month", "month"


class HospitalKpi(models.Model):
    """A hospital's KPIs for one period."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="kpis")
    period = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateField()
    peer_group = models.CharField(max_length=64, blank=True)

    attendances = models.IntegerField(null=True)
    los_median_minutes = models.FloatField(null=True)
    los_p90_minutes = models.FloatField(null=True)
    within_4h_share = models.FloatField(null=True)
    within_4h_adjusted = models.FloatField(null=True, help_text="Adjusted for acuity mix.")
    waits_over_12h = models.IntegerField(null=True)
    admissions = models.IntegerField(null=True)
    conversion_rate = models.FloatField(null=True)
    boarding_median_minutes = models.FloatField(null=True)
    boarding_p90_minutes = models.FloatField(null=True)
    offload_p90_minutes = models.FloatField(null=True)
    or_utilisation = models.FloatField(null=True)
    cancelled_electives = models.IntegerField(null=True)
    bed_occupancy = models.FloatField(null=True)
    icu_occupancy = models.FloatField(null=True)

    suppressed = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["-period_start", "hospital_id"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital", "period", "period_start"], name="benchmarks_kpi_unique"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["period", "period_start"], name="benchmarks_kpi_period")
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id} {self.period} {self.period_start}"


class UnitLosKpi(models.Model):
    """Inpatient length of stay by unit type for one period (by discharge)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="+")
    unit_type = models.CharField(max_length=32, choices=UNIT_TYPE_CHOICES)
    period = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateField()
    stays = models.IntegerField(null=True)
    los_median_days = models.FloatField(null=True)
    los_mean_days = models.FloatField(null=True)
    suppressed = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["-period_start", "hospital_id", "unit_type"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital", "unit_type", "period", "period_start"],
                name="benchmarks_unit_los_unique",
            )
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}/{self.unit_type} {self.period} {self.period_start}"
