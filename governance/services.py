"""Writes. Each state change is one keyword-only ``noun_verb()`` function that checks the
rule, changes the rows, writes its audit event in the same transaction, and publishes to
Kafka only after commit (``transaction.on_commit``)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from governance import audit, chain, conf, control, crypto, keys, policies, retention, signals
from governance.erasure import run_erasers, surrogate_digest
from governance.models import (
    BoardQuorum,
    ErasedSurrogate,
    ErasureRequest,
    ErasureStatus,
    PolicyDecision,
    PolicyStatus,
    RetentionRun,
    SharingPolicy,
)

logger = logging.getLogger("governance.services")


class ServiceError(Exception):
    """A governed change that the rules refuse (wrong state, no quorum, …). Views turn it
    into 400/409; it is never a server fault."""


class Conflict(ServiceError):
    """The object is not in a state that allows this change."""


def _audit(
    actor: Any,
    action: str,
    obj: SharingPolicy | ErasureRequest,
    *,
    request: Any,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit event about a policy or an erasure request, naming its hospital and id."""
    audit.record(
        actor=actor,
        action=action,
        target=obj,
        hospital_ids=[obj.hospital_id],
        object_ids=[obj.pk],
        request=request,
        detail=detail,
    )


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- Hospitals (through the configured model, never the hub's code) --------------------------


def hospital_site_code(hospital_id: int) -> str:
    field = conf.setting("GOVERNANCE_HOSPITAL_SITE_CODE_FIELD", "site_code")
    row = (
        conf.hospital_model()
        ._default_manager.filter(pk=hospital_id)
        .values_list(field, flat=True)
        .first()
    )
    if row is None:
        raise ServiceError(f"no hospital {hospital_id}")
    return str(row)


def hospital_quorum(hospital_id: int) -> int:
    """Board approvals required for this hospital's policies: its region's, else the default."""
    field = conf.setting("GOVERNANCE_HOSPITAL_REGION_FIELD", "region")
    default = int(conf.setting("GOVERNANCE_POLICY_QUORUM", 2))
    try:
        attname = conf.hospital_model()._meta.get_field(field).attname  # type: ignore[union-attr]
    except Exception:  # no region field on this hospital model: the default applies
        return default
    region_id = (
        conf.hospital_model()
        ._default_manager.filter(pk=hospital_id)
        .values_list(attname, flat=True)
        .first()
    )
    rule = BoardQuorum.objects.filter(region_id=region_id).first() if region_id else None
    return rule.quorum if rule is not None else default


# --- Sharing policies --------------------------------------------------------------------------


def _validate_policy(document: dict[str, Any], *, site_code: str, version: int) -> None:
    try:
        policies.validate(document, site_code=site_code, version=version)
    except policies.PolicyError as exc:
        raise ServiceError(f"policy document: {exc}") from None


@transaction.atomic
def policy_create_draft(
    *,
    actor: Any,
    hospital_id: int,
    document: dict[str, Any] | None = None,
    note: str = "",
    effective_at: datetime | None = None,
    request: Any = None,
) -> SharingPolicy:
    """Start the next version of a hospital's policy (from the latest version, or the DE-ID
    template when there is none, unless a document is given)."""
    site_code = hospital_site_code(hospital_id)
    latest = SharingPolicy.objects.filter(hospital_id=hospital_id).order_by("-version").first()
    version = (latest.version if latest else 0) + 1
    if document is None:
        document = dict(latest.document) if latest else policies.template()
    _validate_policy(document, site_code=site_code, version=version)
    try:
        with transaction.atomic():
            policy = SharingPolicy.objects.create(
                hospital_id=hospital_id,
                site_code=site_code,
                version=version,
                document=document,
                note=note,
                effective_at=effective_at,
                created_by_id=getattr(actor, "pk", None),
            )
    except IntegrityError:
        raise Conflict("another draft was created at the same time; try again") from None
    _audit(actor, "policy.draft", policy, request=request, detail={"version": version})
    return policy


def _locked(policy: SharingPolicy) -> SharingPolicy:
    return SharingPolicy.objects.select_for_update().get(pk=policy.pk)


@transaction.atomic
def policy_update_draft(
    *,
    actor: Any,
    policy: SharingPolicy,
    document: dict[str, Any] | None = None,
    note: str | None = None,
    effective_at: datetime | None = None,
    request: Any = None,
) -> SharingPolicy:
    policy = _locked(policy)
    if policy.status != PolicyStatus.DRAFT:
        raise Conflict(f"only drafts can be edited (this one is {policy.status})")
    if document is not None:
        _validate_policy(document, site_code=policy.site_code, version=policy.version)
        policy.document = document
    if note is not None:
        policy.note = note
    if effective_at is not None:
        policy.effective_at = effective_at
    policy.save(update_fields=["document", "note", "effective_at"])
    _audit(actor, "policy.edit", policy, request=request)
    return policy


@transaction.atomic
def policy_submit(
    *, actor: Any, policy: SharingPolicy, request: Any = None, now: datetime | None = None
) -> SharingPolicy:
    """draft → review."""
    policy = _locked(policy)
    if policy.status != PolicyStatus.DRAFT:
        raise Conflict(f"only drafts can be submitted (this one is {policy.status})")
    policy.status = PolicyStatus.REVIEW
    policy.submitted_at = _now(now)
    policy.save(update_fields=["status", "submitted_at"])
    _audit(actor, "policy.submit", policy, request=request)
    return policy


@transaction.atomic
def policy_decide(
    *,
    actor: Any,
    policy: SharingPolicy,
    approve: bool,
    comment: str = "",
    request: Any = None,
    now: datetime | None = None,
) -> SharingPolicy:
    """One board member approves or rejects a policy in review. The quorum of approvals (the
    region's, see ``BoardQuorum``) makes it approved; one rejection sends it back."""
    policy = _locked(policy)
    if policy.status != PolicyStatus.REVIEW:
        raise Conflict(f"only policies in review can be decided (this one is {policy.status})")
    if approve and policy.created_by_id is not None and policy.created_by_id == actor.pk:
        # Four eyes: whoever drafted a policy cannot count towards its approval.
        raise ServiceError("the author of a policy cannot approve it")
    try:
        with transaction.atomic():
            PolicyDecision.objects.create(
                policy=policy,
                member_id=actor.pk,
                member_label=actor.get_username(),
                decision=PolicyDecision.Decision.APPROVE
                if approve
                else PolicyDecision.Decision.REJECT,
                comment=comment,
                decided_at=_now(now),
            )
    except IntegrityError:
        raise Conflict("you have already decided on this policy") from None
    approvals = policy.decisions.filter(decision=PolicyDecision.Decision.APPROVE).count()
    quorum = hospital_quorum(policy.hospital_id)
    if not approve:
        policy.status = PolicyStatus.REJECTED
    elif approvals >= quorum:
        policy.status = PolicyStatus.APPROVED
        policy.approved_at = _now(now)
    policy.save(update_fields=["status", "approved_at"])
    _audit(
        actor,
        "policy.approve" if approve else "policy.reject",
        policy,
        request=request,
        detail={"approvals": approvals, "quorum": quorum, "status": policy.status},
    )
    return policy


@transaction.atomic
def policy_publish(
    *,
    actor: Any,
    policy: SharingPolicy,
    effective_at: datetime | None = None,
    request: Any = None,
    now: datetime | None = None,
) -> SharingPolicy:
    """approved → published at ``effective_at`` (default now). A future date schedules it:
    ``policies_publish_due`` (Celery beat) publishes it when the date arrives.

    Publishing signs the body with the governance key (Ed25519, ``deid.policy.sign_policy``),
    supersedes the previous version, and sends the signed policy on the control topic after
    commit."""
    policy = _locked(policy)
    moment = _now(now)
    if policy.status != PolicyStatus.APPROVED:
        raise Conflict(f"only approved policies can be published (this one is {policy.status})")
    when = effective_at or policy.effective_at or moment
    policy.effective_at = when
    if when > moment:
        policy.save(update_fields=["effective_at"])
        _audit(
            actor,
            "policy.schedule",
            policy,
            request=request,
            detail={"effective_at": when.isoformat()},
        )
        return policy
    key = keys.signing_key()
    signed = policies.sign(
        policy.document,
        site_code=policy.site_code,
        version=policy.version,
        issued_at=when,
        key=key,
    )
    SharingPolicy.objects.filter(
        hospital_id=policy.hospital_id, status=PolicyStatus.PUBLISHED
    ).update(status=PolicyStatus.SUPERSEDED)
    policy.status = PolicyStatus.PUBLISHED
    policy.published_at = moment
    policy.signed = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    policy.key_id = signed["signature"]["key_id"]
    policy.save(update_fields=["status", "published_at", "signed", "key_id", "effective_at"])
    _audit(
        actor,
        "policy.publish",
        policy,
        request=request,
        detail={"version": policy.version, "key_id": policy.key_id},
    )
    message = policies.control_message(signed, site_code=policy.site_code)
    site_code, policy_pk = policy.site_code, policy.pk

    def send() -> None:
        control.publish(site_code=site_code, value=message, headers={"type": "control.policy"})
        signals.policy_published.send(sender=SharingPolicy, policy=policy)
        logger.info("policy %s v%s published to %s", site_code, policy.version, policy_pk)

    transaction.on_commit(send)
    return policy


def policies_publish_due(*, now: datetime | None = None) -> list[SharingPolicy]:
    """Publish every approved policy whose effective date has arrived (Celery beat)."""
    moment = _now(now)
    due = SharingPolicy.objects.filter(status=PolicyStatus.APPROVED, effective_at__lte=moment)
    return [
        policy_publish(actor=None, policy=policy, now=moment)
        for policy in due.order_by("effective_at")
    ]


def policy_resend(*, hospital_id: int) -> bool:
    """Re-send the policy in force (after a broker outage, or for a new DE-ID worker)."""
    policy = (
        SharingPolicy.objects.filter(hospital_id=hospital_id, status=PolicyStatus.PUBLISHED)
        .order_by("-version")
        .first()
    )
    if policy is None or not policy.signed:
        return False
    signed = json.loads(bytes(policy.signed))
    control.publish(
        site_code=policy.site_code,
        value=policies.control_message(signed, site_code=policy.site_code),
        headers={"type": "control.policy"},
    )
    return True


# --- Erasure requests --------------------------------------------------------------------------


@transaction.atomic
def erasure_request_create(
    *,
    actor: Any,
    hospital_id: int,
    surrogate_id: str,
    origin: str,
    reason: str = "",
    request: Any = None,
    now: datetime | None = None,
) -> ErasureRequest:
    """Receive a request to erase one patient (by surrogate). An open request for the same
    patient is returned as is, so a site retrying its call does not open a second one."""
    surrogate_id = surrogate_id.strip()
    if not surrogate_id or len(surrogate_id) > 128:
        raise ServiceError("surrogate_id: 1-128 characters")
    if origin not in ErasureRequest.Origin.values:
        raise ServiceError(f"origin: one of {ErasureRequest.Origin.values}")
    digest = surrogate_digest(surrogate_id)
    existing = (
        ErasureRequest.objects.filter(hospital_id=hospital_id, surrogate_digest=digest)
        .exclude(status__in=[ErasureStatus.REJECTED])
        .first()
    )
    if existing is not None:
        return existing
    moment = _now(now)
    days = int(conf.setting("GOVERNANCE_ERASURE_DEADLINE_DAYS", 30))
    erasure = ErasureRequest(
        hospital_id=hospital_id,
        site_code=hospital_site_code(hospital_id),
        surrogate_id=surrogate_id,
        surrogate_digest=digest,
        origin=origin,
        reason=reason,
        received_at=moment,
        due_at=moment + timedelta(days=days),
        requested_by_label=actor.get_username() if actor is not None else "",
    )
    erasure.save(force_insert=True)
    # Never the surrogate itself in the audit log: the erasure id names the request.
    _audit(actor, "erasure.receive", erasure, request=request, detail={"origin": origin})
    return erasure


def _locked_erasure(erasure: ErasureRequest) -> ErasureRequest:
    return ErasureRequest.objects.select_for_update().get(pk=erasure.pk)


@transaction.atomic
def erasure_request_approve(
    *, actor: Any, erasure: ErasureRequest, request: Any = None, now: datetime | None = None
) -> ErasureRequest:
    erasure = _locked_erasure(erasure)
    if erasure.status != ErasureStatus.RECEIVED:
        raise Conflict(f"only received requests can be approved (this one is {erasure.status})")
    erasure.status = ErasureStatus.APPROVED
    erasure.approved_at = _now(now)
    erasure.approved_by_label = actor.get_username()
    erasure.save(update_fields=["status", "approved_at", "approved_by_label"])
    _audit(actor, "erasure.approve", erasure, request=request)
    return erasure


@transaction.atomic
def erasure_request_reject(
    *,
    actor: Any,
    erasure: ErasureRequest,
    reason: str,
    request: Any = None,
    now: datetime | None = None,
) -> ErasureRequest:
    erasure = _locked_erasure(erasure)
    if erasure.status not in (ErasureStatus.RECEIVED, ErasureStatus.APPROVED):
        raise Conflict(f"a request that is {erasure.status} cannot be rejected")
    erasure.status = ErasureStatus.REJECTED
    erasure.closed_at = _now(now)
    erasure.save(update_fields=["status", "closed_at"])
    _audit(actor, "erasure.reject", erasure, request=request, detail={"reason": reason[:500]})
    return erasure


@transaction.atomic
def erasure_request_execute(
    *, actor: Any, erasure: ErasureRequest, request: Any = None, now: datetime | None = None
) -> ErasureRequest:
    """approved → executed: every registered eraser deletes the surrogate's rows (counts per
    table kept as evidence), the surrogate joins the erased list (replays skip it), and after
    commit the erasure directive goes to the site on the control topic."""
    erasure = _locked_erasure(erasure)
    if erasure.status != ErasureStatus.APPROVED:
        raise Conflict(f"only approved requests can be executed (this one is {erasure.status})")
    surrogate = str(erasure.surrogate_id)
    counts = run_erasers(site_code=erasure.site_code, surrogate_ids=[surrogate])
    ErasedSurrogate.objects.get_or_create(
        surrogate_digest=erasure.surrogate_digest,
        defaults={"hospital_id": erasure.hospital_id, "erasure": erasure},
    )
    erasure.status = ErasureStatus.EXECUTED
    erasure.executed_at = _now(now)
    erasure.deleted_counts = counts
    erasure.directive_id = uuid.uuid4()
    erasure.save(update_fields=["status", "executed_at", "deleted_counts", "directive_id"])
    audit.record(
        actor=actor,
        action="erasure.execute",
        target=erasure,
        hospital_ids=[erasure.hospital_id],
        object_ids=[erasure.pk],
        request=request,
        row_count=sum(counts.values()),
        detail={"deleted": counts},
    )
    transaction.on_commit(lambda: _send_directive(erasure, surrogate))
    return erasure


def _send_directive(erasure: ErasureRequest, surrogate: str) -> None:
    directive = control.sign_directive(
        control.erasure_directive(
            directive_id=str(erasure.directive_id),
            erasure_id=str(erasure.pk),
            site_code=erasure.site_code,
            surrogate_id=surrogate,
            due_at=erasure.due_at.astimezone(UTC).isoformat(),
        ),
        keys.signing_key(),
    )
    # Queued for the site API first: a site whose agent polls the hub gets the directive even
    # while Kafka is unreachable (the publish below then raises, and a resend retries it).
    signals.erasure_directive_issued.send(
        sender=ErasureRequest,
        erasure=erasure,
        hospital_id=erasure.hospital_id,
        site_code=erasure.site_code,
        directive=directive,
    )
    control.publish(
        site_code=erasure.site_code,
        value=control.encode(directive),
        headers={"type": control.ERASURE_TYPE},
    )


def erasure_directive_resend(*, erasure: ErasureRequest) -> None:
    """Send an executed request's directive again (the site confirms idempotently)."""
    if erasure.status != ErasureStatus.EXECUTED:
        raise Conflict("only executed, unconfirmed requests have a directive to resend")
    _send_directive(erasure, str(erasure.surrogate_id))


REQUIRED_EVIDENCE = ("method", "erased_at")


@transaction.atomic
def erasure_request_confirm(
    *,
    actor: Any,
    erasure: ErasureRequest,
    evidence: dict[str, Any],
    request: Any = None,
    now: datetime | None = None,
) -> ErasureRequest:
    """executed → closed, with the site's evidence that it destroyed the patient's key and
    registry entry (crypto-shredding). The surrogate is replaced by its digest in the stored
    evidence. Confirming a closed request again is a no-op."""
    erasure = _locked_erasure(erasure)
    if erasure.status == ErasureStatus.CLOSED:
        return erasure
    if erasure.status != ErasureStatus.EXECUTED:
        raise Conflict(f"only executed requests can be confirmed (this one is {erasure.status})")
    missing = [k for k in REQUIRED_EVIDENCE if k not in evidence]
    if missing or evidence.get("method") != "crypto-shredding":
        raise ServiceError(f"evidence must state method 'crypto-shredding' and {missing or ''}")
    stored = {k: v for k, v in evidence.items() if k != "surrogate_id"}
    claimed = evidence.get("surrogate_id")
    if claimed is not None and surrogate_digest(str(claimed)) != erasure.surrogate_digest:
        raise ServiceError("evidence is for another surrogate")
    stored["surrogate_digest"] = erasure.surrogate_digest
    moment = _now(now)
    erasure.status = ErasureStatus.CLOSED
    erasure.confirmed_at = moment
    erasure.closed_at = moment
    erasure.site_evidence = stored
    erasure.save(update_fields=["status", "confirmed_at", "closed_at", "site_evidence"])
    _audit(
        actor,
        "erasure.confirm",
        erasure,
        request=request,
        detail={"evidence_sha256": str(evidence.get("evidence_sha256", ""))[:64]},
    )
    # In this transaction: a copy of the directive elsewhere (the hub's site queue) must not
    # outlive the closed request with the surrogate in it.
    signals.erasure_confirmed.send(
        sender=ErasureRequest,
        erasure=erasure,
        hospital_id=erasure.hospital_id,
        site_code=erasure.site_code,
        surrogate_digest=erasure.surrogate_digest,
    )
    return erasure


def erasure_deadlines_check(*, now: datetime | None = None) -> list[ErasureRequest]:
    """Alert (log, audit event, admins' mail) on open requests whose deadline is within
    ``GOVERNANCE_ERASURE_ALERT_DAYS`` or past; at most once a day per request."""
    from django.core.mail import mail_admins

    moment = _now(now)
    window = timedelta(days=int(conf.setting("GOVERNANCE_ERASURE_ALERT_DAYS", 7)))
    open_ = ErasureRequest.objects.exclude(
        status__in=[ErasureStatus.CLOSED, ErasureStatus.REJECTED]
    ).filter(due_at__lte=moment + window)
    alerted = []
    for erasure in open_.order_by("due_at"):
        if erasure.last_alert_at and moment - erasure.last_alert_at < timedelta(hours=23):
            continue
        overdue = erasure.due_at <= moment
        text = (
            f"erasure request {erasure.pk} at {erasure.site_code} is {erasure.status}; "
            f"{'OVERDUE since' if overdue else 'due'} {erasure.due_at:%Y-%m-%d %H:%M} UTC"
        )
        (logger.error if overdue else logger.warning)(text)
        with transaction.atomic():
            ErasureRequest.objects.filter(pk=erasure.pk).update(last_alert_at=moment)
            audit.record(
                actor=None,
                action="erasure.deadline_alert",
                target=erasure,
                hospital_ids=[erasure.hospital_id],
                object_ids=[erasure.pk],
                detail={"overdue": overdue, "due_at": erasure.due_at.isoformat()},
            )
        mail_admins(f"Erasure deadline: {erasure.site_code}", text, fail_silently=True)
        erasure.last_alert_at = moment
        alerted.append(erasure)
    return alerted


# --- Retention ---------------------------------------------------------------------------------


def _policy_months(policy_key: str) -> dict[int, int]:
    """Months per hospital from each hospital's policy in force."""
    out: dict[int, int] = {}
    published = SharingPolicy.objects.filter(status=PolicyStatus.PUBLISHED)
    latest = published.values("hospital_id").annotate(v=Max("version"))
    wanted = {(row["hospital_id"], row["v"]) for row in latest}
    for policy in published.filter(hospital_id__in=[h for h, _ in wanted]):
        if (policy.hospital_id, policy.version) not in wanted:
            continue
        months = (policy.document.get("retention") or {}).get(policy_key)
        if isinstance(months, int) and months >= 1:
            out[policy.hospital_id] = months
    return out


@transaction.atomic
def retention_run(
    *, actor: Any = None, as_of: datetime | None = None, dry_run: bool = False, request: Any = None
) -> RetentionRun:
    """Enforce retention for every data class as of ``as_of`` (a frozen clock in tests), or
    only report what would go (``dry_run``). Writes a ``RetentionRun`` report either way."""
    moment = _now(as_of)
    run = RetentionRun(
        as_of=moment,
        dry_run=dry_run,
        actor_label=actor.get_username() if actor is not None else "celery-beat",
    )
    classes: list[dict[str, Any]] = []
    for dc in retention.data_classes():
        cutoff = retention.months_before(moment, dc.months)
        per_hospital: dict[int, datetime] = {}
        if dc.policy_key:
            per_hospital = {
                h: retention.months_before(moment, m)
                for h, m in _policy_months(dc.policy_key).items()
            }
        report = retention.ClassReport(
            dc.name,
            dc.months,
            cutoff.isoformat(),
            {str(h): c.isoformat() for h, c in sorted(per_hospital.items())},
        )
        for table in dc.tables:
            try:
                with transaction.atomic():
                    report.tables.append(
                        retention.enforce_table(
                            dc, table, cutoff=cutoff, per_hospital=per_hospital, dry_run=dry_run
                        )
                    )
            except Exception as exc:  # one broken table must not stop the others
                logger.exception("retention of %s failed", table)
                report.tables.append(retention.TableReport(table, error=type(exc).__name__))
        classes.append(report.as_dict())
    prune = retention.prune_audit(as_of=moment, dry_run=dry_run)
    classes.append(
        {
            "name": retention.AUDIT_CLASS,
            "months": retention.AUDIT_MONTHS,
            "cutoff": prune.cutoff.isoformat(),
            "tables": [{"table": "governance_auditevent", "rows_deleted": prune.rows}],
        }
    )
    if not dry_run and prune.rows:
        run.audit_anchor_seq = prune.anchor_seq
        run.audit_anchor_hash = prune.anchor_hash
    run.report = {"classes": classes}
    run.finished_at = timezone.now()
    run.save()
    total = sum(
        t.get("rows_deleted", 0) + t.get("rows_in_dropped_partitions", 0)
        for c in classes
        for t in c["tables"]
    )
    audit.record(
        actor=actor,
        action="retention.dry_run" if dry_run else "retention.run",
        target=run,
        object_ids=[run.pk],
        row_count=total,
        request=request,
        detail={"as_of": moment.isoformat()},
    )
    return run


# --- Audit chain and keys ----------------------------------------------------------------------


def audit_link() -> int:
    return chain.link_all()


def audit_checkpoint_write(*, now: datetime | None = None) -> Any:
    return chain.write_checkpoint(now=now)


def field_keys_rotate(*, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted field still under an older key version with the current
    key. Idempotent and resumable: rows already on the current version are skipped."""
    ring = crypto.keyring()
    done: dict[str, int] = {}
    for model, field in crypto.encrypted_fields():
        label = f"{model._meta.label}.{field.name}"
        done[label] = 0
        stale_prefixes = [f"{crypto.PREFIX}:{v}:" for v in ring.keys if v != ring.current]
        for prefix in stale_prefixes:
            while True:
                with transaction.atomic():
                    rows = list(
                        model._default_manager.select_for_update(skip_locked=True)
                        .filter(**{f"{field.attname}__startswith": prefix})
                        .order_by("pk")[:batch]
                    )
                    if not rows:
                        break
                    for row in rows:
                        ad = crypto.associated_data(row, field)
                        plain = getattr(row, field.attname)
                        token = crypto.encrypt(plain, ad, ring=ring)
                        model._default_manager.filter(pk=row.pk).update(**{field.attname: token})
                    done[label] += len(rows)
    return done
