"""The native per-window core (`deid_core`, Rust, built from native/deid_core) and the plain
description of a policy's flow rules it takes.

The core reproduces deid.transforms.window for the flow events of a window byte for byte
(docs/deid.md, "The native core"). What it does not reproduce exactly it declines, and the
caller runs the Python reference: so a policy feature this module cannot describe, a missing
extension module, or DEID_NATIVE=0 simply mean the Python path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from deid.contracts.vocabulary import GRANULARITY_ORDER, DateGranularity
from deid.policy import AGE_TOP_CODE, FLOW_QUASI_IDENTIFIERS, RELEASABLE_FIELDS, Policy
from deid.transforms.kanon import DATAFLY_TARGET, wide_age_band
from deid.transforms.verify import allowed_age_bands

NATIVE_ENV = "DEID_NATIVE"

core: ModuleType | None
try:
    core = importlib.import_module("deid_core")
except ImportError:  # not built: the Python reference does everything
    core = None


def enabled() -> bool:
    """True when the extension is importable and not switched off (DEID_NATIVE=0)."""
    return core is not None and os.environ.get(NATIVE_ENV, "1") != "0"


# id(policy) -> (the policy, its compiled rules); the policy is kept so the id stays its own.
_COMPILED: dict[int, tuple[Policy, list[dict[str, Any]] | None]] = {}


def flow_rules(policy: Policy) -> list[dict[str, Any]] | None:
    """The policy's flow rules as plain data for the core, in the policy's audience order;
    None when a rule uses something the core does not implement (then: Python path).
    Compiled once per policy object (a worker has one policy at a time)."""
    cached = _COMPILED.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    if len(_COMPILED) >= 16:
        _COMPILED.clear()
    rules = _compile(policy)
    _COMPILED[id(policy)] = (policy, rules)
    return rules


def _compile(policy: Policy) -> list[dict[str, Any]] | None:
    out: list[dict[str, Any]] = []
    releasable = RELEASABLE_FIELDS["flow"]
    day_rank = GRANULARITY_ORDER.index(DateGranularity.DAY)
    for audience, rule in policy.rules_for("flow").items():
        qis = rule.quasi_identifiers
        # At most 8 quasi-identifiers: the core packs a class key into 128 bits.
        if len(set(qis)) != len(qis) or not set(qis) <= FLOW_QUASI_IDENTIFIERS or len(qis) > 8:
            return None
        if not rule.fields <= releasable:
            return None
        ldiv = rule.l_diversity
        if ldiv is not None and (ldiv.attribute not in releasable or ldiv.attribute in qis):
            return None
        bands = rule.age_bands
        if not bands or bands[0] != 0 or bands[-1] != AGE_TOP_CODE:
            return None
        labels = [rule.band_label(age) for age in range(AGE_TOP_CODE)]
        top = f"{AGE_TOP_CODE}+"
        out.append(
            {
                "audience": audience.value,
                "fields": sorted(rule.fields),
                "granularity": rule.date_granularity.value,
                "band_labels": labels,
                "top_band": top,
                "wide": {label: wide_age_band(label) for label in {*labels, top}},
                "qis": list(qis),
                "k": rule.k,
                "l_diversity": None if ldiv is None else (ldiv.attribute, ldiv.l),
                "max_suppression": float(rule.max_suppression),
                "target": DATAFLY_TARGET,
                # For the core's verifier, from deid.transforms.verify's own definitions.
                "verify_disallowed": sorted(releasable - rule.fields),
                "verify_floor_rank": max(GRANULARITY_ORDER.index(rule.date_granularity), day_rank),
                "verify_allowed_bands": sorted(allowed_age_bands(rule)),
            }
        )
    return out
