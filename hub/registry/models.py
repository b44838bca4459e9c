"""The hospital registry: who is in the region, what they can do, and which agents feed them.

Nothing here is about patients. Bed counts are the *baseline* capacity (what the hospital is
set up for); the live counts arrive as de-identified census records (``hub.census``).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from deid.contracts.topics import SITE_CODE_RE
from deid.contracts.vocabulary import UnitType

site_code_validator = RegexValidator(
    SITE_CODE_RE, "1-32 characters of A-Z a-z 0-9 _ - (it becomes part of Kafka topic names)"
)

UNIT_TYPE_CHOICES = [(t.value, t.value.replace("_", " ")) for t in UnitType]


class Region(models.Model):
    """A coordinated group of hospitals with one operations center (e.g. an EMS region)."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="America/New_York")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["code"]

    # Region-level data: governance shows it to region-wide roles only.
    governance_scope: ClassVar[dict[str, str]] = {}

    def __str__(self) -> str:
        return self.name


class StrokeCapability(models.TextChoices):
    """Stroke centre certification levels (Joint Commission / Brain Attack Coalition)."""

    NONE = "none", "none"
    ACUTE_READY = "acute_ready", "acute stroke ready"
    PRIMARY = "primary", "primary stroke centre"
    THROMBECTOMY = "thrombectomy", "thrombectomy-capable"
    COMPREHENSIVE = "comprehensive", "comprehensive stroke centre"


class Hospital(models.Model):
    """One hospital (one site agent installation, one site code) and its capabilities.

    Capabilities decide where an ambulance may go (a STEMI to a PCI centre, major trauma to a
    level I/II centre); diversion logic reads them, so they are columns, not free text.
    """

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="hospitals")
    site_code = models.CharField(max_length=32, unique=True, validators=[site_code_validator])
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    city = models.CharField(max_length=100, blank=True)
    county = models.CharField(max_length=100, blank=True)
    county_fips = models.CharField(max_length=5, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    latitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    # CMS certification number ("hospital_pk" in the HHS capacity data) for reconciliation
    # against public reporting; not an identifier of any person.
    cms_ccn = models.CharField("CMS certification number", max_length=10, blank=True)

    trauma_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="ACS trauma level I-V as 1-5; empty when not a trauma centre.",
    )
    stroke = models.CharField(
        max_length=16, choices=StrokeCapability.choices, default=StrokeCapability.NONE
    )
    stemi_pci = models.BooleanField("STEMI / 24-7 PCI", default=False)
    paediatrics = models.BooleanField(default=False)
    burns = models.BooleanField(default=False)
    psychiatry = models.BooleanField(default=False)
    maternity = models.BooleanField(default=False)

    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["site_code"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(trauma_level__isnull=True)
                | Q(trauma_level__gte=1, trauma_level__lte=5),
                name="registry_hospital_trauma_level_1_5",
            )
        ]

    # For governance: the hospital scope of a Hospital row is the row itself.
    governance_scope: ClassVar[dict[str, str]] = {"hospital": "", "unit": ""}

    def __str__(self) -> str:
        return f"{self.name} ({self.site_code})"


class Unit(models.Model):
    """A care unit of a hospital (a ward, an ICU, the ED) with its baseline bed counts.

    ``code`` is the site's own unit code, as its site agent reports it; census records are
    matched to units by (site code, unit code).
    """

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="units")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    unit_type = models.CharField(max_length=32, choices=UNIT_TYPE_CHOICES)
    licensed_beds = models.PositiveIntegerField(default=0)
    staffed_beds = models.PositiveIntegerField(default=0)
    surge_beds = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["hospital__site_code", "code"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["hospital", "code"], name="registry_unit_code_unique")
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital", "unit": ""}

    def __str__(self) -> str:
        return f"{self.hospital.site_code}/{self.code}"


class TravelTime(models.Model):
    """Typical ground-ambulance travel time from one hospital to another (directed)."""

    origin = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="travel_from")
    destination = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="travel_to")
    minutes = models.PositiveIntegerField()
    distance_km = models.FloatField(null=True, blank=True)
    source = models.CharField(
        max_length=32, default="synthetic", help_text="'synthetic', 'routing', 'measured'."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["origin__site_code", "destination__site_code"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["origin", "destination"], name="registry_travel_time_unique"
            ),
            models.CheckConstraint(
                condition=~Q(origin=models.F("destination")), name="registry_travel_not_self"
            ),
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "origin"}

    def __str__(self) -> str:
        return f"{self.origin_id}->{self.destination_id}: {self.minutes} min"


class AgentComponent(models.TextChoices):
    SITE_AGENT = "site_agent", "site agent"
    DEID_WORKER = "deid_worker", "DE-ID worker"


class SiteAgent(models.Model):
    """A piece of software at a hospital that talks to the hub: the site agent or its DE-ID
    worker. It holds the Ed25519 key whose public half is registered here; the hub accepts an
    envelope for a site only if one of the site's enrolled, unrevoked agents' keys signed it.

    Secrets are never stored: the one-time enrolment token and the API credential are kept as
    SHA-256 digests (both are 256-bit random values, so a slow password hash adds nothing).
    """

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    component = models.CharField(
        max_length=16, choices=AgentComponent.choices, default=AgentComponent.DEID_WORKER
    )
    public_key = models.CharField(
        max_length=64, blank=True, help_text="Base64 of the raw 32-byte Ed25519 public key."
    )
    key_id = models.CharField(max_length=16, blank=True, db_index=True)
    enrolment_token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    enrolment_expires_at = models.DateTimeField(null=True, blank=True)
    credential_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="site_agent",
    )
    enrolled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    feed_status = models.JSONField(default=dict, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    outbox_backlog = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["hospital__site_code", "name"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["hospital", "name"], name="registry_agent_name_unique")
        ]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.hospital.site_code}/{self.name}"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.enrolled_at is None:
            return "pending"
        return "enrolled"


class Directive(models.Model):
    """An instruction from the hub to a site, fetched by its agent (and mirrored on the
    control topic): a diversion decision, an erasure request, a surge level, a notice.

    The agent acknowledges it; the hub never reaches into the site's systems itself.
    """

    class Kind(models.TextChoices):
        DIVERSION = "diversion", "diversion"
        ERASURE = "erasure", "erasure request"
        SURGE = "surge", "surge level"
        NOTICE = "notice", "notice"

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="directives")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    effective_from = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        SiteAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering: ClassVar = ["-issued_at", "-id"]
        indexes: ClassVar = [models.Index(fields=["hospital", "-issued_at"])]

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital"}

    def __str__(self) -> str:
        return f"{self.kind} for {self.hospital_id} at {self.issued_at:%Y-%m-%d %H:%M}"
