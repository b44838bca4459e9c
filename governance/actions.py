"""The governed actions: what each view, page and export declares, and who may do it.

An action names a kind of access ("read_census", "approve_policy"); its spec says which roles
may perform it and at what level of detail. ``governance.access.restrict`` then decides *which
rows* (hospitals, units) each role sees. Keeping the two apart means a new endpoint picks an
existing action (or registers one) and never writes its own permission logic.

Hub apps register their own actions at app-ready time with ``register_action``; the defaults
below cover governance's own endpoints and the hub vocabulary agreed so far.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from governance.roles import Role


class Level(enum.StrEnum):
    """How much detail an action reveals; decides which roles may be given it at all."""

    RECORD = "record"  # patient-flow records (surrogate ids), row-level exports
    UNIT = "unit"  # per-unit operational detail: census, beds, forecasts per unit
    AGGREGATE = "aggregate"  # hospital or regional totals, benchmarks
    SITE = "site"  # the site API: a site agent pushing or reading its own site's data
    GOVERNANCE = "governance"  # policies, erasure, retention, audit


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One governed action: its name, who may perform it, and how much it reveals."""

    name: str
    roles: frozenset[Role]
    level: Level
    write: bool = False
    description: str = ""


_lock = threading.Lock()
_registry: dict[str, ActionSpec] = {}


class UnknownAction(LookupError):
    """A view declared an action nobody registered: refused, never guessed."""


def _validate(spec: ActionSpec) -> None:
    # These rules are the role definitions of issue 7; refusing a bad registration here means
    # no endpoint can quietly widen a role.
    if Role.EXECUTIVE in spec.roles and spec.level in (Level.RECORD, Level.UNIT, Level.SITE):
        raise ValueError(f"{spec.name}: executives get aggregate-level actions only")
    if Role.AUDITOR in spec.roles and (spec.write or spec.level is not Level.GOVERNANCE):
        raise ValueError(f"{spec.name}: auditors get read-only governance actions only")
    if Role.SITE_AGENT in spec.roles and spec.level is not Level.SITE:
        raise ValueError(f"{spec.name}: site agents use the site API (site-level actions) only")
    if spec.level is Level.SITE and spec.roles - {Role.SITE_AGENT, Role.REGIONAL_OPERATOR}:
        raise ValueError(f"{spec.name}: site-level actions are for site agents (and operators)")


def register_action(
    name: str,
    *,
    roles: set[Role] | frozenset[Role],
    level: Level,
    write: bool = False,
    description: str = "",
    replace: bool = False,
) -> ActionSpec:
    """Declare a governed action. Call from an ``AppConfig.ready()``.

    Registering a name twice is an error unless ``replace=True`` (two apps must not silently
    disagree about who may do something).
    """
    spec = ActionSpec(name, frozenset(roles), Level(level), write, description)
    _validate(spec)
    with _lock:
        existing = _registry.get(name)
        if existing is not None and existing != spec and not replace:
            raise ValueError(f"governed action {name!r} is already registered differently")
        _registry[name] = spec
    return spec


def get_action(name: str) -> ActionSpec:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownAction(f"no governed action {name!r}; register it first") from None


def all_actions() -> dict[str, ActionSpec]:
    return dict(_registry)


R = Role
_OPS = {R.REGIONAL_OPERATOR}
_BOARD = {R.GOVERNANCE_BOARD}

DEFAULT_ACTIONS: tuple[tuple[str, set[Role], Level, bool, str], ...] = (
    # Hub vocabulary (the hub may register more; these are the agreed core).
    (
        "read_hospitals",
        {R.REGIONAL_OPERATOR, R.ED_STAFF, R.WARD_NURSE, R.EXECUTIVE},
        Level.AGGREGATE,
        False,
        "hospital directory",
    ),
    ("read_census", {R.REGIONAL_OPERATOR, R.ED_STAFF, R.WARD_NURSE}, Level.UNIT, False, ""),
    ("read_forecast", {R.REGIONAL_OPERATOR, R.ED_STAFF, R.WARD_NURSE}, Level.UNIT, False, ""),
    ("read_flow", {R.REGIONAL_OPERATOR, R.ED_STAFF, R.WARD_NURSE}, Level.RECORD, False, ""),
    ("export_census", {R.REGIONAL_OPERATOR, R.ED_STAFF, R.WARD_NURSE}, Level.UNIT, False, ""),
    ("export_flow", _OPS, Level.RECORD, False, "record-level export"),
    ("read_aggregates", {R.REGIONAL_OPERATOR, R.EXECUTIVE}, Level.AGGREGATE, False, ""),
    ("read_benchmarks", {R.REGIONAL_OPERATOR, R.EXECUTIVE}, Level.AGGREGATE, False, ""),
    ("coordinate", _OPS, Level.UNIT, True, "diversion, surge, resource sharing"),
    ("run_scenario", _OPS, Level.AGGREGATE, True, "what-if scenarios"),
    ("site_push", {R.SITE_AGENT}, Level.SITE, True, "site API: push metrics, heartbeats"),
    ("site_read", {R.SITE_AGENT}, Level.SITE, False, "site API: read own site's config"),
    # Governance's own.
    ("read_policy", _BOARD, Level.GOVERNANCE, False, "read sharing policies"),
    ("manage_policy", _BOARD, Level.GOVERNANCE, True, "draft, edit, submit, publish"),
    ("approve_policy", _BOARD, Level.GOVERNANCE, True, "approve or reject a policy in review"),
    ("read_erasure", _BOARD, Level.GOVERNANCE, False, "read erasure requests"),
    ("manage_erasure", _BOARD, Level.GOVERNANCE, True, "open, approve, execute, close"),
    ("site_erasure", {R.SITE_AGENT}, Level.SITE, True, "site API: request / confirm erasure"),
    ("read_retention", _BOARD, Level.GOVERNANCE, False, "retention reports"),
    ("run_retention", _BOARD, Level.GOVERNANCE, True, "start a retention run (or dry run)"),
    ("read_audit", {R.GOVERNANCE_BOARD, R.AUDITOR}, Level.GOVERNANCE, False, "search audit"),
    ("export_audit", {R.GOVERNANCE_BOARD, R.AUDITOR}, Level.GOVERNANCE, False, "export audit"),
)


def register_defaults() -> None:
    for name, roles, level, write, description in DEFAULT_ACTIONS:
        register_action(name, roles=roles, level=level, write=write, description=description)
