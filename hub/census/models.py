"""Storage of de-identified regional records.

``CensusSnapshot`` and ``FlowEvent`` are time series, range-partitioned by month on
``observed_at`` in PostgreSQL (see migration 0001: the parent tables, a default partition and
``census_ensure_partitions()``). PostgreSQL requires every unique constraint of a partitioned
table to include the partition key, so the primary key is (event_id, observed_at). That is as
strong as a unique ``event_id``: ``observed_at`` is computed from the record itself, so a
redelivered record always lands on the same key and ``ON CONFLICT DO NOTHING`` drops it.

``UnitState`` holds the latest snapshot per unit and audience: the live board reads one row
per unit instead of scanning the series.

Foreign keys from the series to the registry are not enforced by the database
(``db_constraint=False``): checking them costs a lookup per inserted row, ingestion resolves
both ids from the registry itself, and hospitals are deactivated, never deleted.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from hub.registry.models import UNIT_TYPE_CHOICES, Hospital, Unit

AUDIENCE_CHOICES = [
    ("regional_operations", "regional operations"),
    ("peer_hospitals", "peer hospitals"),
    ("public_benchmarks", "public benchmarks"),
]

VIA_CHOICES = [("kafka", "Kafka regional topic"), ("https", "HTTPS fallback push")]


class CensusSnapshot(models.Model):
    """A unit's capacity at one moment, as released by the site's DE-ID worker."""

    pk = models.CompositePrimaryKey("event_id", "observed_at")
    event_id = models.UUIDField()
    observed_at = models.DateTimeField(
        help_text="Start of the generalised as_of interval (produced_at when as_of is absent)."
    )
    as_of = models.TextField(blank=True, help_text="As released (generalised).")
    hospital = models.ForeignKey(
        Hospital,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # Null when the release withholds the unit code and the site has several units of the
    # type (peer and public audiences): stored for the hospital, not placed on a unit.
    unit = models.ForeignKey(
        Unit,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    site_code = models.CharField(max_length=32)
    unit_code = models.CharField(max_length=32, blank=True)
    unit_type = models.CharField(max_length=32, choices=UNIT_TYPE_CHOICES, blank=True)
    audience = models.CharField(max_length=32, choices=AUDIENCE_CHOICES)
    policy_version = models.PositiveIntegerField()
    source_event_id = models.TextField()

    licensed_beds = models.IntegerField(null=True)
    staffed_beds = models.IntegerField(null=True)
    surge_beds = models.IntegerField(null=True)
    occupied_beds = models.IntegerField(null=True)
    available_beds = models.IntegerField(null=True)
    blocked_beds = models.IntegerField(null=True)
    pending_admissions = models.IntegerField(null=True)
    pending_discharges = models.IntegerField(null=True)
    ed_waiting = models.IntegerField(null=True)
    ed_in_treatment = models.IntegerField(null=True)
    ed_boarding = models.IntegerField(null=True)
    longest_boarding_minutes = models.IntegerField(null=True)
    boarding_p50_minutes = models.IntegerField(null=True)
    boarding_p90_minutes = models.IntegerField(null=True)
    offload_count = models.IntegerField(null=True)
    offload_p50_minutes = models.IntegerField(null=True)
    offload_p90_minutes = models.IntegerField(null=True)
    source = models.TextField(blank=True)
    last_message_at = models.TextField(blank=True)
    stale = models.BooleanField(null=True)
    forecast = models.JSONField(default=list)
    suppressed = models.JSONField(default=list)

    produced_at = models.DateTimeField()
    received_at = models.DateTimeField()
    key_id = models.CharField(max_length=16, help_text="Key that signed the envelope.")
    via = models.CharField(max_length=8, choices=VIA_CHOICES)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["unit", "observed_at"], name="census_snap_unit_time"),
            models.Index(fields=["hospital", "observed_at"], name="census_snap_hosp_time"),
            # History by site code (``?site_code=``, the API's documented filter): without it
            # PostgreSQL scanned the whole month's partition for one hour of one site.
            models.Index(fields=["site_code", "observed_at"], name="census_snap_site_time"),
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital", "unit": "unit"}

    def __str__(self) -> str:
        return f"{self.site_code}/{self.unit_code} @ {self.observed_at:%Y-%m-%d %H:%M}"


class FlowEvent(models.Model):
    """One de-identified patient movement (k-anonymous in its release window)."""

    pk = models.CompositePrimaryKey("event_id", "observed_at")
    event_id = models.UUIDField()
    observed_at = models.DateTimeField(
        help_text="Start of the generalised `occurred` interval (produced_at when absent)."
    )
    occurred = models.TextField(blank=True)
    date_granularity = models.CharField(max_length=8, blank=True)
    hospital = models.ForeignKey(
        Hospital,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    unit = models.ForeignKey(
        Unit,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    site_code = models.CharField(max_length=32)
    audience = models.CharField(max_length=32, choices=AUDIENCE_CHOICES)
    policy_version = models.PositiveIntegerField()
    source_event_id = models.TextField()
    window_id = models.TextField(blank=True)
    surrogate_id = models.TextField(blank=True)
    event_type = models.CharField(max_length=32)
    unit_code = models.CharField(max_length=32, blank=True)
    unit_type = models.CharField(max_length=32, blank=True)
    prior_unit_code = models.TextField(blank=True)
    prior_unit_type = models.CharField(max_length=32, blank=True)
    patient_class = models.CharField(max_length=16, blank=True)
    acuity = models.SmallIntegerField(null=True)
    arrival_mode = models.CharField(max_length=16, blank=True)
    age_band = models.TextField(blank=True)
    sex = models.CharField(max_length=8, blank=True)
    zip3 = models.TextField(blank=True)
    wait_minutes = models.IntegerField(null=True)
    generalised = models.JSONField(default=list)

    produced_at = models.DateTimeField()
    received_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    via = models.CharField(max_length=8, choices=VIA_CHOICES)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["hospital", "observed_at"], name="census_flow_hosp_time"),
            # Erasure looks patients up by surrogate; partial, because most audiences get no
            # surrogate at all and those rows need no index entry.
            models.Index(
                fields=["site_code", "surrogate_id"],
                name="census_flow_surrogate",
                condition=~models.Q(surrogate_id=""),
            ),
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital", "unit": "unit"}

    def __str__(self) -> str:
        return f"{self.site_code} {self.event_type} @ {self.observed_at:%Y-%m-%d %H:%M}"


class UnitState(models.Model):
    """The latest census snapshot of a unit for one audience: what the live board shows.

    Upserted by ingestion only when the incoming snapshot is newer (by observed_at, then
    event_id), so redelivery and out-of-order arrival never move it backwards.
    """

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="states")
    audience = models.CharField(max_length=32, choices=AUDIENCE_CHOICES)
    event_id = models.UUIDField()
    observed_at = models.DateTimeField()
    as_of = models.TextField(blank=True)
    policy_version = models.PositiveIntegerField()
    licensed_beds = models.IntegerField(null=True)
    staffed_beds = models.IntegerField(null=True)
    surge_beds = models.IntegerField(null=True)
    occupied_beds = models.IntegerField(null=True)
    available_beds = models.IntegerField(null=True)
    blocked_beds = models.IntegerField(null=True)
    pending_admissions = models.IntegerField(null=True)
    pending_discharges = models.IntegerField(null=True)
    ed_waiting = models.IntegerField(null=True)
    ed_in_treatment = models.IntegerField(null=True)
    ed_boarding = models.IntegerField(null=True)
    longest_boarding_minutes = models.IntegerField(null=True)
    boarding_p50_minutes = models.IntegerField(null=True)
    boarding_p90_minutes = models.IntegerField(null=True)
    offload_count = models.IntegerField(null=True)
    offload_p50_minutes = models.IntegerField(null=True)
    offload_p90_minutes = models.IntegerField(null=True)
    source = models.TextField(blank=True)
    last_message_at = models.TextField(blank=True)
    stale = models.BooleanField(null=True)
    forecast = models.JSONField(default=list)
    suppressed = models.JSONField(default=list)
    produced_at = models.DateTimeField()
    received_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    via = models.CharField(max_length=8, choices=VIA_CHOICES)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["unit", "audience"], name="census_unitstate_unique")
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital", "unit": "unit"}

    def __str__(self) -> str:
        return f"{self.unit_id}/{self.audience} @ {self.observed_at:%Y-%m-%d %H:%M}"


class FeedState(models.Model):
    """The latest heartbeat of each component (site agent, DE-ID worker) of a site, from the
    regional topic: feed status, policy in force, backlog. Freshness of a hospital is judged
    from these and from the unit states."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="+")
    component = models.CharField(max_length=16)
    event_id = models.UUIDField()
    produced_at = models.DateTimeField()
    received_at = models.DateTimeField()
    agent_version = models.CharField(max_length=64, blank=True)
    policy_version = models.PositiveIntegerField(null=True)
    feeds = models.JSONField(default=list)
    outbox_backlog = models.IntegerField(null=True)
    counters = models.JSONField(default=dict)
    key_id = models.CharField(max_length=16)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital", "component"], name="census_feedstate_unique"
            )
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}/{self.component} @ {self.produced_at:%Y-%m-%d %H:%M}"
