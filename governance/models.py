"""Governance data: role groups, the audit log, sharing policies, retention runs, erasure.

Hospitals are referred to by ``hospital_id`` (the primary key of ``GOVERNANCE_HOSPITAL_MODEL``)
without a foreign key: governance never imports the hub, and its migrations must not depend on
the hub's, so the audit trail and policies also survive a hospital being removed.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from governance.crypto import EncryptedTextField
from governance.roles import Role

ROLE_CHOICES = [(r.value, r.value.replace("_", " ")) for r in Role]


class GovernedGroup(models.Model):
    """Tags a Django group with the role its members hold.

    The group's guardian object permissions on hospitals and units (``view_<model>``) are its
    scope. One canonical group per (role, hospital) or (role, unit) is created by
    ``grant_hospital`` / ``grant_unit``; any other group can be tagged and granted too.
    """

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="governance")
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)

    class Meta:
        verbose_name = "governed group"

    def __str__(self) -> str:
        return f"{self.group.name} ({self.role})"


class AuditEvent(models.Model):
    """One API call, page view, export or governed change. Append-only and hash-chained.

    The table is created by migration SQL (``managed = False``) because the database itself
    guards it: a trigger refuses UPDATE and DELETE (except linking ``chain_seq`` /
    ``chain_hash`` once, and deleting rows past the 7-year retention horizon), and TRUNCATE is
    revoked from the application role. Being unmanaged also keeps Django's test ``flush`` away
    from it. Rows are inserted freely; ``governance.chain.link_pending`` links them later in
    id order (``chain_seq``) so requests never wait on one lock.
    """

    # Region-level data: only region-wide scopes (board, auditors) ever see it.
    governance_scope: ClassVar[dict[str, str]] = {}

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No foreign key: the audit row must outlive (and never cascade from) the user.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_label = models.CharField(max_length=150, blank=True, default="")
    roles = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True, default="")
    method = models.CharField(max_length=10, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    hospital_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    object_ids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    row_count = models.IntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    chain_seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    # NULL (not "") means "not linked yet"; a CHECK pairs it with chain_seq.
    chain_hash = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, editable=False
    )

    class Meta:
        managed = False
        db_table = "governance_auditevent"
        ordering: ClassVar = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_label or 'anonymous'}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain head (Ed25519), written daily; append-only like audit.

    ``statement`` is the exact signed text; it is also logged and, when
    ``GOVERNANCE_AUDIT_CHECKPOINT_DIR`` is set, appended to a file there, so the chain can be
    checked against something outside the table.
    """

    governance_scope: ClassVar[dict[str, str]] = {}

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    chain_seq = models.BigIntegerField()
    event_id = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)
    statement = models.TextField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)

    class Meta:
        managed = False
        db_table = "governance_auditcheckpoint"
        ordering: ClassVar = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint {self.chain_seq} {self.chain_hash[:12]}"


class BoardQuorum(models.Model):
    """How many board approvals a region requires before a sharing policy can be published."""

    region_id = models.BigIntegerField(unique=True)
    quorum = models.PositiveSmallIntegerField(default=2)

    def __str__(self) -> str:
        return f"region {self.region_id}: {self.quorum}"


class PolicyStatus(models.TextChoices):
    DRAFT = "draft"
    REVIEW = "review"
    APPROVED = "approved"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    REJECTED = "rejected"


class SharingPolicy(models.Model):
    """One version of what a hospital shares with whom, in the DE-ID policy format.

    draft → review → approved (quorum of board approvals) → published at ``effective_at``
    (signed with the governance key, sent on the control topic). A published version is
    immutable; the next change is a new version.
    """

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital_id"}

    hospital_id = models.BigIntegerField(db_index=True)
    site_code = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    document = models.JSONField()
    note = models.TextField(blank=True, default="")
    effective_at = models.DateTimeField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    signed = models.BinaryField(null=True, blank=True, editable=False)
    key_id = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        verbose_name_plural = "sharing policies"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["hospital_id", "version"], name="governance_policy_version_unique"
            ),
        ]
        ordering: ClassVar = ["hospital_id", "-version"]

    def __str__(self) -> str:
        return f"{self.site_code} v{self.version} ({self.status})"


class PolicyDecision(models.Model):
    """One board member's approval or rejection of a policy in review (one per member)."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    policy = models.ForeignKey(SharingPolicy, on_delete=models.CASCADE, related_name="decisions")
    member_id = models.BigIntegerField()
    member_label = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["policy", "member_id"], name="governance_decision_once_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_label}: {self.decision}"


class RetentionRun(models.Model):
    """One retention enforcement (or dry run) and its report: per data class, the cutoff,
    the partitions dropped and the rows deleted (or that would be)."""

    governance_scope: ClassVar[dict[str, str]] = {}

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateTimeField()
    dry_run = models.BooleanField(default=False)
    actor_label = models.CharField(max_length=150, blank=True, default="")
    report = models.JSONField(default=dict)
    # The last audit chain link removed by retention: verify starts from here afterwards.
    audit_anchor_seq = models.BigIntegerField(null=True, blank=True)
    audit_anchor_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering: ClassVar = ["-started_at"]

    def __str__(self) -> str:
        return f"retention {'dry run ' if self.dry_run else ''}{self.as_of:%Y-%m-%d}"


class ErasureStatus(models.TextChoices):
    RECEIVED = "received"
    APPROVED = "approved"
    EXECUTED = "executed"  # hub rows deleted, directive sent to the site
    CLOSED = "closed"  # the site confirmed crypto-shredding
    REJECTED = "rejected"


class ErasureRequest(models.Model):
    """A request to erase one patient, known to the hub only by a surrogate id.

    received → approved → executed (hub rows deleted, counts per table recorded, erasure
    directive sent on the control topic) → closed (the site confirmed it destroyed the
    patient's key and registry entry). ``due_at`` is one month after receipt (GDPR Art. 12(3)).
    """

    governance_scope: ClassVar[dict[str, str]] = {"hospital": "hospital_id"}

    class Origin(models.TextChoices):
        SITE = "site"
        BOARD = "board"

    # A UUID primary key is chosen before insert: the encrypted surrogate binds to it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    hospital_id = models.BigIntegerField(db_index=True)
    site_code = models.CharField(max_length=32)
    surrogate_id = EncryptedTextField()
    # SHA-256 of the surrogate: surrogates are random (not derived from patient data), so a
    # plain digest cannot be reversed by guessing; it lets duplicates and replays be matched.
    surrogate_digest = models.CharField(max_length=64, db_index=True)
    origin = models.CharField(max_length=8, choices=Origin.choices)
    reason = EncryptedTextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=ErasureStatus.choices, default=ErasureStatus.RECEIVED
    )
    received_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    requested_by_label = models.CharField(max_length=150, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by_label = models.CharField(max_length=150, blank=True, default="")
    executed_at = models.DateTimeField(null=True, blank=True)
    deleted_counts = models.JSONField(default=dict, blank=True)
    directive_id = models.UUIDField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    site_evidence = models.JSONField(default=dict, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_alert_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["due_at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} at {self.site_code} ({self.status})"


class ErasedSurrogate(models.Model):
    """Surrogates already erased, by digest: consumers skip them when a topic is replayed,
    so an erased patient never comes back from Kafka's retained log."""

    surrogate_digest = models.CharField(max_length=64, primary_key=True)
    hospital_id = models.BigIntegerField()
    erasure = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT)
    erased_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.surrogate_digest[:12]
