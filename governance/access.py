"""Who may see what: roles, hospital/unit grants, and the one queryset filter everyone uses.

* A **role** (``Role``) is membership of a Django group tagged with that role
  (``GovernedGroup``). The role decides what *kind* of data one sees, through the action specs
  in ``governance.actions``.
* A **grant** is a django-guardian object permission (``view_<model>``) on a hospital or unit,
  given to a group, never user by user: ``grant_hospital(user, hospital, Role.ED_STAFF)`` puts
  the user in the canonical group ``ed_staff@registry.hospital:<pk>`` that holds the permission.
  Guardian is used for these coarse objects only.
* ``restrict(queryset, user, action)`` is the ONE filter every API view, page and export
  applies. Time-series rows are filtered by plain hospital/unit id lists computed once per call
  (``scope_for``), so the query planner sees ``hospital_id IN (...)``, not a guardian join.

Models declare how to reach their hospital and unit::

    class CensusSnapshot(models.Model):
        governance_scope = {"hospital": "unit__hospital", "unit": "unit"}

``{}`` means "region-level data": visible only to region-wide scopes. A model without
``governance_scope`` is refused (fail closed) for any scoped user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Q
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model

from governance import conf, versions
from governance.actions import ActionSpec, Level, get_action
from governance.models import GovernedGroup
from governance.roles import REGION_WIDE, SCOPED, Role

__all__ = [
    "REGION_WIDE",
    "SCOPED",
    "Role",
    "Scope",
    "assign_role",
    "can",
    "ensure_roles",
    "grant_hospital",
    "grant_unit",
    "hospital_ids_of",
    "register_role_permissions",
    "restrict",
    "revoke_hospital",
    "revoke_role",
    "revoke_unit",
    "roles_of",
    "scope_for",
]

M = TypeVar("M", bound=models.Model)
UserLike = AbstractBaseUser | AnonymousUser
Principal = AbstractBaseUser | Group

# Model permissions each role group gets (used by the admin and by ``user.has_perm``). Hub apps
# add theirs with ``register_role_permissions``; permissions of models not installed are skipped.
ROLE_MODEL_PERMISSIONS: dict[Role, set[str]] = {
    Role.GOVERNANCE_BOARD: {
        "governance.view_sharingpolicy",
        "governance.add_sharingpolicy",
        "governance.change_sharingpolicy",
        "governance.view_policydecision",
        "governance.view_erasurerequest",
        "governance.view_retentionrun",
        "governance.view_auditevent",
        "governance.view_auditcheckpoint",
        "governance.view_boardquorum",
    },
    Role.AUDITOR: {"governance.view_auditevent", "governance.view_auditcheckpoint"},
    Role.REGIONAL_OPERATOR: set(),
    Role.ED_STAFF: set(),
    Role.WARD_NURSE: set(),
    Role.EXECUTIVE: set(),
    Role.SITE_AGENT: set(),
}


def register_role_permissions(role: Role, permissions: Iterable[str]) -> None:
    """Add model permissions ("app_label.codename") that ``ensure_roles`` gives a role group."""
    ROLE_MODEL_PERMISSIONS[Role(role)].update(permissions)


# --- Roles and grants --------------------------------------------------------------------------


@transaction.atomic
def ensure_roles() -> dict[Role, Group]:
    """Create (or complete) one group per role with its model permissions. Idempotent."""
    groups: dict[Role, Group] = {}
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.group_name)
        GovernedGroup.objects.get_or_create(group=group, defaults={"role": role.value})
        wanted = []
        for dotted in sorted(ROLE_MODEL_PERMISSIONS[role]):
            app_label, _, codename = dotted.partition(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.add(*wanted)
        groups[role] = group
    _bump()
    return groups


def _role_group(role: Role) -> Group:
    group, _ = Group.objects.get_or_create(name=role.group_name)
    GovernedGroup.objects.get_or_create(group=group, defaults={"role": role.value})
    return group


@transaction.atomic
def assign_role(user: AbstractBaseUser, role: Role) -> Group:
    """Give a user a role. For region-wide roles (operator, board, auditor) this is the whole
    grant; scoped roles also need ``grant_hospital`` / ``grant_unit`` before they see anything."""
    group = _role_group(Role(role))
    user.groups.add(group)  # type: ignore[attr-defined]
    _bump(user)
    return group


@transaction.atomic
def revoke_role(user: AbstractBaseUser, role: Role) -> None:
    """Take a role away entirely: its role group and every scoped group of that role."""
    groups = Group.objects.filter(governance__role=Role(role).value, user__pk=user.pk)
    user.groups.remove(*groups)  # type: ignore[attr-defined]
    _bump(user)


def _check_tag(group: Group, role: Role) -> None:
    tag, created = GovernedGroup.objects.get_or_create(group=group, defaults={"role": role.value})
    if not created and tag.role != role.value:
        raise ValueError(f"group {group.name!r} holds role {tag.role}, not {role.value}")


def _grant(principal: Principal, obj: models.Model, role: Role) -> Group:
    model_name = obj._meta.model_name
    perm = f"view_{model_name}"
    if isinstance(principal, Group):
        _check_tag(principal, role)
        group = principal
    else:
        name = f"{role.value}@{obj._meta.label_lower}:{obj.pk}"
        group, _ = Group.objects.get_or_create(name=name)
        _check_tag(group, role)
        principal.groups.add(group, _role_group(role))  # type: ignore[attr-defined]
    assign_perm(perm, group, obj)
    _bump(principal if not isinstance(principal, Group) else None)
    return group


@transaction.atomic
def grant_hospital(principal: Principal, hospital: models.Model, role: Role) -> Group:
    """Let ``principal`` (a user, or a group) act as ``role`` at ``hospital``.

    A user joins the canonical group for (role, hospital); a group gets the object permission
    itself and is tagged with the role. ED staff at a hospital see its ED units
    (``GOVERNANCE_ED_UNIT_FILTER``); executives its aggregates; a site agent its own site.
    Returns the group that holds the permission.
    """
    role = Role(role)
    if not isinstance(hospital, conf.hospital_model()):
        raise TypeError(f"expected a {conf.hospital_model().__name__}, got {type(hospital)}")
    if role in REGION_WIDE:
        raise ValueError(f"{role} is region-wide: use assign_role, not a hospital grant")
    if role is Role.WARD_NURSE:
        raise ValueError("ward nurses are granted their ward with grant_unit")
    return _grant(principal, hospital, role)


@transaction.atomic
def grant_unit(principal: Principal, unit: models.Model, role: Role) -> Group:
    """Let ``principal`` act as ``role`` on one unit (a ward nurse's ward, or one ED unit)."""
    role = Role(role)
    if not isinstance(unit, conf.unit_model()):
        raise TypeError(f"expected a {conf.unit_model().__name__}, got {type(unit)}")
    if role not in (Role.WARD_NURSE, Role.ED_STAFF):
        raise ValueError(f"{role} is not granted unit by unit")
    return _grant(principal, unit, role)


def _revoke(principal: Principal, obj: models.Model, role: Role) -> None:
    if isinstance(principal, Group):
        remove_perm(f"view_{obj._meta.model_name}", principal, obj)
        _bump()
        return
    name = f"{Role(role).value}@{obj._meta.label_lower}:{obj.pk}"
    principal.groups.remove(*Group.objects.filter(name=name))  # type: ignore[attr-defined]
    _bump(principal)


@transaction.atomic
def revoke_hospital(principal: Principal, hospital: models.Model, role: Role) -> None:
    _revoke(principal, hospital, role)


@transaction.atomic
def revoke_unit(principal: Principal, unit: models.Model, role: Role) -> None:
    _revoke(principal, unit, role)


# --- Who holds what ----------------------------------------------------------------------------

# A per-user memo (roles, grants, scopes): read once per grants version, not once per request.
# ``governance.versions`` holds the shared version that every change of roles, grants, users
# or credentials bumps (here, by signals, and when the change commits), so a memo is never
# used after the change that made it wrong.
_memos = versions.VersionedMemo()


def _bump(user: Any = None) -> None:
    versions.bump_grants()
    if user is not None and hasattr(user, "_governance_memo"):
        del user._governance_memo


def _memo(user: Any) -> dict[str, Any]:
    stamp = versions.current_stamp()
    memo = getattr(user, "_governance_memo", None)
    if memo is None or stamp is None or memo[0] != stamp:
        pk = getattr(user, "pk", None)
        if stamp is None or pk is None:
            data: dict[str, Any] = {}
        else:
            # Shared by the process's requests for this user under this version; the values
            # are immutable (frozensets, Scope) or only ever added to.
            data = _memos.get_or_compute(("user", type(user).__name__, pk), dict)
        memo = (stamp, data)
        try:
            user._governance_memo = memo
        except AttributeError:  # an object that takes no attributes: no memo, still correct
            return data
    out: dict[str, Any] = memo[1]
    return out


def _active(user: UserLike | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def roles_of(user: UserLike | None) -> frozenset[Role]:
    """The roles a user holds (through any tagged group). Superusers hold none by role."""
    if user is None or not _active(user):
        return frozenset()
    memo = _memo(user)
    if "roles" not in memo:
        user_pk = int(user.pk or 0)
        values = GovernedGroup.objects.filter(group__user__pk=user_pk).values_list(
            "role", flat=True
        )
        memo["roles"] = frozenset(Role(v) for v in values)
    roles: frozenset[Role] = memo["roles"]
    return roles


def _granted(user: UserLike, model: type[models.Model]) -> dict[Role, set[Any]]:
    """Primary keys of ``model`` rows granted to the user's groups, by the group's role."""
    memo = _memo(user)
    key = f"granted:{model._meta.label_lower}"
    if key not in memo:
        perms = get_group_obj_perms_model()
        rows = perms._default_manager.filter(
            content_type=ContentType.objects.get_for_model(model),
            permission__codename=f"view_{model._meta.model_name}",
            group__user__pk=user.pk,
            group__governance__isnull=False,
        ).values_list("group__governance__role", "object_pk")
        to_python = model._meta.pk.to_python
        out: dict[Role, set[Any]] = {}
        for role, object_pk in rows:
            out.setdefault(Role(role), set()).add(to_python(object_pk))
        memo[key] = out
    granted: dict[Role, set[Any]] = memo[key]
    return granted


@dataclass(frozen=True, slots=True)
class Scope:
    """What one user may reach for one action: everything, or these hospitals and units.

    ``hospital_ids`` match rows through a model's hospital path; ``unit_ids`` through its unit
    path. Unit-scoped roles (ED staff, ward nurses) do not see hospital-wide rows.
    """

    all: bool = False
    hospital_ids: frozenset[Any] = field(default_factory=frozenset)
    unit_ids: frozenset[Any] = field(default_factory=frozenset)
    # Hospitals the user may *name* (directory rows): their own, including via their units.
    visible_hospital_ids: frozenset[Any] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return not self.all and not self.hospital_ids and not self.unit_ids


NOTHING = Scope()
EVERYTHING = Scope(all=True)


def _ed_units(hospital_ids: set[Any]) -> set[Any]:
    if not hospital_ids:
        return set()
    unit = conf.unit_model()
    lookup = {f"{conf.unit_hospital_field()}__in": hospital_ids, **conf.ed_unit_filter()}
    return set(unit._default_manager.filter(**lookup).values_list("pk", flat=True))


def _hospitals_of_units(unit_ids: set[Any]) -> set[Any]:
    if not unit_ids:
        return set()
    unit = conf.unit_model()
    attname = unit._meta.get_field(conf.unit_hospital_field()).attname  # type: ignore[union-attr]
    qs = unit._default_manager.filter(pk__in=unit_ids).values_list(attname, flat=True)
    return set(qs)


def scope_for(user: UserLike | None, action: str | ActionSpec) -> Scope:
    """The hospitals and units ``user`` may reach for ``action`` (see ``Scope``).

    Use it directly for raw or time-series queries: ``WHERE hospital_id = ANY(%s)``.
    """
    spec = action if isinstance(action, ActionSpec) else get_action(action)
    if user is None or not _active(user):
        return NOTHING
    if getattr(user, "is_superuser", False):
        return EVERYTHING
    roles = roles_of(user) & spec.roles
    if not roles:
        return NOTHING
    if roles & REGION_WIDE:
        return EVERYTHING
    memo = _memo(user)
    key = f"scope:{spec.name}"
    if key in memo:
        cached: Scope = memo[key]
        return cached
    hospitals: set[Any] = set()
    units: set[Any] = set()
    by_hospital = _granted(user, conf.hospital_model())
    needs_units = roles & {Role.ED_STAFF, Role.WARD_NURSE}
    by_unit = _granted(user, conf.unit_model()) if needs_units else {}
    for role in roles:
        if role is Role.ED_STAFF:
            units |= by_unit.get(role, set()) | _ed_units(by_hospital.get(role, set()))
        elif role is Role.WARD_NURSE:
            units |= by_unit.get(role, set())
        elif role in (Role.EXECUTIVE, Role.SITE_AGENT):
            hospitals |= by_hospital.get(role, set())
    scope = Scope(
        hospital_ids=frozenset(hospitals),
        unit_ids=frozenset(units),
        visible_hospital_ids=frozenset(hospitals | _hospitals_of_units(units)),
    )
    memo[key] = scope
    return scope


def scope_paths(model: type[models.Model]) -> dict[str, str]:
    """How rows of ``model`` reach their hospital and unit (``governance_scope``)."""
    if model is conf.hospital_model():
        return {"hospital": "pk"}
    if model is conf.unit_model():
        return {"hospital": conf.unit_hospital_field(), "unit": "pk"}
    paths = getattr(model, "governance_scope", None)
    if paths is None:
        raise ImproperlyConfigured(
            f"{model._meta.label} declares no governance_scope: add e.g. "
            '`governance_scope = {"hospital": "unit__hospital", "unit": "unit"}`'
        )
    # "" names the row itself (the registry's convention), the same as "pk".
    return {kind: (path or "pk") for kind, path in paths.items()}


def scope_q(model: type[models.Model], scope: Scope) -> Q | None:
    """The filter for a bounded scope; None when no row of ``model`` can match."""
    paths = scope_paths(model)
    hospital_ids = scope.hospital_ids
    if model is conf.hospital_model():
        hospital_ids = scope.visible_hospital_ids
    q = Q()
    matched = False
    if hospital_ids and "hospital" in paths:
        q |= Q(**{f"{paths['hospital']}__in": sorted(hospital_ids, key=str)})
        matched = True
    if scope.unit_ids and "unit" in paths:
        q |= Q(**{f"{paths['unit']}__in": sorted(scope.unit_ids, key=str)})
        matched = True
    return q if matched else None


def restrict(
    queryset: models.QuerySet[M], user: UserLike | None, action: str
) -> models.QuerySet[M]:
    """``queryset`` cut down to what ``user`` may see for ``action``. Use it everywhere.

    Regional operators (and the board / auditors for governance actions) see every hospital;
    ED staff their hospital's ED units; ward nurses their ward; executives aggregate-level
    actions of their hospital(s) only, so record- and unit-level querysets come back empty;
    site agents their own site through site-level actions. Superusers see everything.
    Unknown actions raise ``UnknownAction``; inactive and anonymous users get nothing.
    """
    scope = scope_for(user, action)
    model = queryset.model
    if scope.all:
        scope_paths(model)  # a model without a declared scope fails even for operators
        return queryset
    if scope.empty:
        return queryset.none()
    q = scope_q(model, scope)
    return queryset.none() if q is None else queryset.filter(q)


def can(user: UserLike | None, action: str, obj: models.Model | None = None) -> bool:
    """May ``user`` perform ``action`` at all (``obj=None``), or on this object?"""
    if obj is None:
        return not scope_for(user, action).empty
    model = type(obj)
    return restrict(model._default_manager.filter(pk=obj.pk), user, action).exists()


def hospital_ids_of(obj: models.Model) -> list[Any]:
    """The hospital an object belongs to (for audit events), following its scope path."""
    try:
        path = scope_paths(type(obj)).get("hospital")
    except ImproperlyConfigured:
        return []
    if path is None:
        return []
    if path == "pk":
        return [obj.pk]
    value: Any = obj
    parts = path.split("__")
    for i, part in enumerate(parts):
        if value is None:
            return []
        last = i == len(parts) - 1
        if last:
            # Prefer the raw "<fk>_id" column so no extra query is made.
            f = value._meta.get_field(part)
            value = getattr(value, getattr(f, "attname", part))
        else:
            value = getattr(value, part)
    return [] if value is None else [value]


def level_of(action: str) -> Level:
    return get_action(action).level
