"""What regional coordination records: recommendations, decisions, surge levels, resource
requests and alerts. The rules that produce them are pure (``diversion``, ``surge``,
``matching``, ``alerts_rules``); ``services`` writes these rows.

Every row names its hospital (``governance_scope``), so ``governance.access.restrict`` shows
each person only the hospitals they may see; region-level rows (no hospital) are for
region-wide roles.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from governance.crypto import EncryptedTextField
from hub.coordination.config import SEVERITIES, RegionConfig
from hub.registry.models import Directive, Hospital, Region

USER = settings.AUTH_USER_MODEL
LEVEL_VALIDATORS = [MinValueValidator(1), MaxValueValidator(4)]


class DiversionStatus(models.TextChoices):
    OPEN = "open", "open"
    ADVISORY = "advisory", "advisory"
    CLOSED = "closed", "closed to ambulances"


class Mode(models.TextChoices):
    NORMAL = "normal", "normal"
    LOAD_BALANCING = "load_balancing", "load-balancing"


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


assert tuple(Severity.values) == SEVERITIES  # noqa: S101 (the pure rules use the same words)

# EDXL-HAVE EMS traffic status for each diversion status (what hub.census and the EDXL-HAVE
# export read from the directive's payload).
EMS_TRAFFIC = {
    DiversionStatus.OPEN: "Normal",
    DiversionStatus.ADVISORY: "Advisory",
    DiversionStatus.CLOSED: "Closed",
}


class RegionSettings(models.Model):
    """A region's coordination thresholds: ``config.RegionConfig`` as JSON, holding only what
    differs from the documented defaults (docs/coordination.md)."""

    region = models.OneToOneField(
        Region, on_delete=models.CASCADE, related_name="coordination_settings"
    )
    config = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return f"coordination settings of {self.region_id}"

    def region_config(self) -> RegionConfig:
        return RegionConfig.from_dict(self.config)


class RegionState(models.Model):
    """The region as of its last evaluation: its mode and its own OPEL level."""

    region = models.OneToOneField(
        Region, on_delete=models.CASCADE, related_name="coordination_state"
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.NORMAL)
    surge_level = models.PositiveSmallIntegerField(null=True, validators=LEVEL_VALIDATORS)
    surge_score = models.FloatField(null=True)
    level_since = models.DateTimeField(null=True)
    hospitals = models.PositiveIntegerField(default=0)
    fresh = models.PositiveIntegerField(default=0)
    would_close = models.PositiveIntegerField(default=0)
    evaluated_at = models.DateTimeField(null=True)
    evaluation_ms = models.FloatField(null=True)

    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return f"{self.region_id}: {self.mode}, OPEL {self.surge_level}"


class HospitalStatus(models.Model):
    """A hospital's recommended diversion status and surge level as the last evaluation left
    them: the priors of the next one (hysteresis, minimum duration, expiry)."""

    hospital = models.OneToOneField(
        Hospital, on_delete=models.CASCADE, related_name="coordination_status"
    )
    diversion_status = models.CharField(
        max_length=16, choices=DiversionStatus.choices, default=DiversionStatus.OPEN
    )
    status_since = models.DateTimeField(null=True)
    expires_at = models.DateTimeField(null=True)
    destinations = models.JSONField(default=dict, blank=True)  # ambulance class → site code
    pressure = models.FloatField(null=True)
    fresh = models.BooleanField(default=False)
    surge_level = models.PositiveSmallIntegerField(null=True, validators=LEVEL_VALIDATORS)
    surge_score = models.FloatField(null=True)
    level_since = models.DateTimeField(null=True)
    evaluated_at = models.DateTimeField(null=True)

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}: {self.diversion_status}, OPEL {self.surge_level}"


class DiversionRecommendation(models.Model):
    """What the rules recommend for one hospital, with its score and the numbers behind it.

    While the figures keep saying the same thing the pending recommendation is renewed in
    place (``renewed_at``, ``expires_at``); when they say something else it is superseded by a
    new one, so each row is one distinct piece of advice an operator can accept or override.

    A renewal keeps the stored words and figures while none of the figures' values changed
    (the snapshot time ``figures["as_of"]`` moving alone is not a change): ``figures_as_of``
    is the evaluation that first saw them as they are, ``renewed_at`` the last that confirmed
    them ("figures unchanged since HH:MM").
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        ACCEPTED = "accepted", "accepted"
        OVERRIDDEN = "overridden", "overridden"
        SUPERSEDED = "superseded", "superseded by newer advice"
        WITHDRAWN = "withdrawn", "withdrawn (the figures cleared)"
        EXPIRED = "expired", "expired unanswered"

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    # No index of its own: ``coord_rec_hosp_time`` starts with the hospital (every index is
    # written for every new row, and a load-balancing region creates thousands at once).
    hospital = models.ForeignKey(
        Hospital,
        on_delete=models.CASCADE,
        related_name="diversion_recommendations",
        db_index=False,
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.NORMAL)
    status = models.CharField(max_length=16, choices=DiversionStatus.choices)
    score = models.FloatField(null=True)
    routes = models.JSONField(default=list)  # [{class, destination, travel_minutes, share, ...}]
    kept = models.JSONField(default=list)  # [{class, reason}]
    explanation = models.TextField()
    figures = models.JSONField(default=dict)
    no_forecast = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField()
    renewed_at = models.DateTimeField()
    # When the stored words and figures were written (first seen with these values).
    figures_as_of = models.DateTimeField(null=True)
    expires_at = models.DateTimeField(null=True)
    closed_at = models.DateTimeField(null=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["hospital", "-created_at"], name="coord_rec_hosp_time"),
            models.Index(fields=["state", "-created_at"], name="coord_rec_state_time"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital"],
                condition=Q(state="pending"),
                name="coord_rec_one_pending_per_hospital",
            )
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}: {self.status} ({self.state})"

    @property
    def region_evaluated_at(self) -> Any:
        """When the region was last evaluated (the last confirmation of these figures while
        the advice is pending), or None."""
        try:
            return self.region.coordination_state.evaluated_at
        except RegionState.DoesNotExist:
            return None

    def signature(self) -> tuple[Any, ...]:
        """What makes two recommendations the same advice (not the same numbers)."""
        return recommendation_signature(self.mode, self.status, self.routes)


def recommendation_signature(mode: str, status: str, routes: Any) -> tuple[Any, ...]:
    """What makes two recommendations the same advice: mode, status and the destination of
    each ambulance class (not the numbers), from stored route rows."""
    return advice_signature(mode, status, ((r["class"], r["destination"]) for r in routes))


def advice_signature(
    mode: str, status: str, destinations: Iterable[tuple[str, str]]
) -> tuple[Any, ...]:
    """``recommendation_signature`` from (ambulance class, destination) pairs."""
    return (mode, status, tuple(sorted(destinations)))


class DiversionDecision(models.Model):
    """An operator's answer to a recommendation (accepted as is, or overridden) — or a
    diversion set by hand — with who, when and why. It becomes a directive to the site
    (``directive``) and the EMS traffic status of the EDXL-HAVE export until it expires,
    is renewed, ended or superseded. Rows are never deleted: they are the record of which
    recommendations people trust."""

    class Action(models.TextChoices):
        ACCEPT = "accept", "accepted the recommendation"
        OVERRIDE = "override", "overrode the recommendation"

    class State(models.TextChoices):
        ACTIVE = "active", "in force"
        EXPIRED = "expired", "expired (not renewed)"
        ENDED = "ended", "ended by an operator"
        SUPERSEDED = "superseded", "superseded by a later decision"

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    hospital = models.ForeignKey(
        Hospital, on_delete=models.CASCADE, related_name="diversion_decisions"
    )
    recommendation = models.ForeignKey(
        DiversionRecommendation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    status = models.CharField(max_length=16, choices=DiversionStatus.choices)
    routes = models.JSONField(default=list)
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    renewals = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_reason = models.TextField(blank=True)
    directive = models.ForeignKey(
        Directive, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["-decided_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["hospital", "-decided_at"], name="coord_dec_hosp_time"),
            models.Index(fields=["state", "expires_at"], name="coord_dec_state_exp"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital"],
                condition=Q(state="active"),
                name="coord_dec_one_active_per_hospital",
            ),
            models.CheckConstraint(
                condition=~Q(action="override") | ~Q(reason=""),
                name="coord_dec_override_has_reason",
            ),
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}: {self.action} → {self.status} ({self.state})"

    @property
    def ems_traffic(self) -> str:
        return EMS_TRAFFIC[DiversionStatus(self.status)]


class SurgeChecklist(models.Model):
    """One distinct checklist of actions, stored once and never changed: keyed by the SHA-256
    of its canonical JSON (``checklists.digest``), so a level change points at exactly the
    list it carried even after the region's configured checklist is edited."""

    digest = models.CharField(max_length=64, primary_key=True)
    items = models.JSONField(default=list)

    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return f"checklist {self.digest[:12]} ({len(self.items)} items)"


class SurgeLevelChange(models.Model):
    """One change of OPEL level (a hospital's, or the region's when ``hospital`` is null), with
    the parameters that caused it and (by reference) the checklist of the new level."""

    # Neither has an index of its own: ``coord_surge_hosp_time`` and ``coord_surge_region_time``
    # start with them (a region's first evaluation records a change per hospital).
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    hospital = models.ForeignKey(
        Hospital,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="surge_changes",
        db_index=False,
    )
    from_level = models.PositiveSmallIntegerField(null=True, validators=LEVEL_VALIDATORS)
    to_level = models.PositiveSmallIntegerField(validators=LEVEL_VALIDATORS)
    score = models.FloatField()
    causes = models.JSONField(default=list)  # [{name, value, level, weight}]
    readings = models.JSONField(default=list)
    # No index of its own: a handful of distinct checklists, referenced by every change; it
    # is never filtered on (PROTECT asks only when a checklist would be deleted: never).
    checklist_ref = models.ForeignKey(
        SurgeChecklist,
        on_delete=models.PROTECT,
        related_name="+",
        db_column="checklist_digest",
        db_index=False,
    )
    explanation = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["-at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["hospital", "-at"], name="coord_surge_hosp_time"),
            models.Index(fields=["region", "-at"], name="coord_surge_region_time"),
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id or 'region'}: OPEL {self.from_level} → {self.to_level}"

    @property
    def checklist(self) -> list[str]:
        """The checklist the new level carried, read through its reference."""
        return list(self.checklist_ref.items)


class ResourceKind(models.TextChoices):
    STAFF = "staff", "staff"
    BED = "bed", "beds (patient transfer)"
    OR_TIME = "or_time", "OR time (minutes)"
    EQUIPMENT = "equipment", "equipment"


class ResourceAvailability(models.Model):
    """What a hospital declares spare (staff by role and shift, OR minutes, equipment); beds
    come from the live census instead."""

    hospital = models.ForeignKey(
        Hospital, on_delete=models.CASCADE, related_name="resource_availability"
    )
    kind = models.CharField(max_length=16, choices=ResourceKind.choices)
    item = models.CharField(max_length=64)
    quantity = models.FloatField(validators=[MinValueValidator(0)])
    shift = models.CharField(max_length=64, blank=True)
    as_of = models.DateTimeField()
    declared_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering: ClassVar = ["-as_of", "-id"]
        indexes: ClassVar = [models.Index(fields=["kind", "item", "-as_of"], name="coord_avail")]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital_id}: {self.quantity:g} {self.item} ({self.kind})"


class RequestStatus(models.TextChoices):
    REQUESTED = "requested", "requested"
    OFFERED = "offered", "offered"
    ACCEPTED = "accepted", "accepted"
    FULFILLED = "fulfilled", "fulfilled"
    CANCELLED = "cancelled", "cancelled"


class ResourceRequest(models.Model):
    """A hospital asks the region for staff, beds, OR time or equipment."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    requester = models.ForeignKey(
        Hospital, on_delete=models.CASCADE, related_name="resource_requests"
    )
    kind = models.CharField(max_length=16, choices=ResourceKind.choices)
    item = models.CharField(max_length=64)
    quantity = models.FloatField(validators=[MinValueValidator(0)])
    shift = models.CharField(max_length=64, blank=True)
    needed_by = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.REQUESTED
    )
    suggestions = models.JSONField(default=list)  # suggested matches from live availability
    suggested_at = models.DateTimeField(null=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [models.Index(fields=["status", "-created_at"], name="coord_req")]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "requester"}

    def __str__(self) -> str:
        return f"{self.requester_id} asks {self.quantity:g} {self.item} ({self.status})"


class ResourceOffer(models.Model):
    """A donor hospital's offer against a request."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        ACCEPTED = "accepted", "accepted"
        DECLINED = "declined", "declined"

    request = models.ForeignKey(ResourceRequest, on_delete=models.CASCADE, related_name="offers")
    donor = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="+")
    quantity = models.FloatField(validators=[MinValueValidator(0)])
    note = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    offered_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    offered_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["offered_at", "id"]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "request__requester"}

    def __str__(self) -> str:
        return f"{self.donor_id} offers {self.quantity:g} ({self.state})"


class ResourceRequestEvent(models.Model):
    """Every step of a request, in order: who moved it from what to what, and why."""

    request = models.ForeignKey(ResourceRequest, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=RequestStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=RequestStatus.choices)
    actor = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    note = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering: ClassVar = ["at", "id"]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "request__requester"}

    def __str__(self) -> str:
        return f"{self.request_id}: {self.from_status or '-'} → {self.to_status}"


class Alert(models.Model):
    """A raised alert. ``key`` de-duplicates: while an alert with a key is open (or
    acknowledged but its condition still holds) the same condition raises nothing new.

    Threshold and forecast alerts are grouped per hospital and kind (``threshold:H``,
    ``forecast:H``): ``figures["breaches"]`` lists every figure breaching as of the group's
    last change, ``history`` each change ({at, added, removed, severity}, ``reopened`` when
    it notified again after an acknowledgement) and each acknowledgement ({at,
    acknowledged_by, note, breaching, severity}): what the operator acknowledged."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        RESOLVED = "resolved", "resolved"

    # No index of its own: ``coord_alert_open`` starts with the region (a saturated region's
    # first evaluation raises tens of thousands of alerts, each written to every index).
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+", db_index=False)
    hospital = models.ForeignKey(
        Hospital, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=300)
    message = models.TextField()
    figures = models.JSONField(default=dict, blank=True)
    condition = models.BooleanField(default=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    raised_at = models.DateTimeField()
    # When the alert last became open (raised, or re-opened by a grouped alert gaining a
    # figure or severity after an acknowledgement): escalation counts from here.
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_notified_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledge_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering: ClassVar = ["-raised_at", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["region", "state", "-raised_at"], name="coord_alert_open"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["region", "key"],
                condition=~Q(state="resolved"),
                name="coord_alert_one_live_per_key",
            )
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title} ({self.state})"

    def seen_at(self, region_evaluated_at: datetime | None) -> datetime:
        """When the alert's condition was last seen to hold. A live condition alert holds at
        every evaluation of its region until one finds it cleared (that one resolves it),
        so it was last seen at the region's last evaluation: the evaluation stores that
        time once per region, not on each of a national region's tens of thousands of live
        alerts every minute. ``last_seen_at`` holds it for the others (events, resolved
        alerts) and as of raising."""
        if (
            self.condition
            and self.state != self.State.RESOLVED
            and region_evaluated_at is not None
            and region_evaluated_at > self.last_seen_at
        ):
            return region_evaluated_at
        return self.last_seen_at


class AlertRecipient(models.Model):
    """Who gets alert e-mail in a region: from a severity up, and from an escalation level
    (0 = at once; 1, 2, 3 = when an alert waits that many escalation steps unacknowledged)."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    min_severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return f"{self.email} (≥{self.min_severity}, level {self.escalation_level})"


class WebhookEndpoint(models.Model):
    """A receiver of signed alert webhooks (HMAC-SHA256, ``coordination.webhooks``). The
    shared secret is stored encrypted (AES-256-GCM, bound to this row)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    secret = EncryptedTextField()
    min_severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING
    )
    active = models.BooleanField(default=True)

    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return self.url


class AlertDelivery(models.Model):
    """One attempt to deliver an alert on one channel, kept for the record."""

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        WEBHOOK = "webhook", "webhook"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=500)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    attempted_at = models.DateTimeField()
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar = ["-attempted_at", "-id"]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "alert__hospital"}

    def __str__(self) -> str:
        return f"{self.channel} → {self.target}: {'ok' if self.ok else 'failed'}"


class ScenarioRun(models.Model):
    """A what-if run an operator queued from the web app: a bundled simulation scenario, the
    changes to try against it, and the result table (one row per metric: baseline and
    variant means, the paired difference with its 95% CI) once the Celery task has run it.
    The simulation itself is ``simulation.whatif``; this row only tracks the run."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    scenario = models.CharField(max_length=64)
    changes = models.JSONField(default=dict)
    settings = models.JSONField(default=dict, blank=True)  # the form's values, as entered
    replications = models.PositiveSmallIntegerField()
    seed = models.PositiveIntegerField(default=1)
    run_days = models.PositiveSmallIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    result = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-requested_at", "-id"]

    # A scenario is a model hospital, not any hospital's data: region-level.
    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return f"what-if {self.pk} on {self.scenario} ({self.state})"
