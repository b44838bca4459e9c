"""De-identification policies: data, versioned, signed by the hub's governance (Ed25519).

A policy says, per record kind (census, flow, heartbeat) and per audience (regional_operations,
peer_hospitals, public_benchmarks), which fields go out, at what date granularity, with which
age bands, small-cell threshold, quasi-identifiers, k and optional l-diversity. The format is
documented in docs/deid.md and as a JSON Schema in docs/schemas/policy.schema.json.

A signed policy document is `{"policy": {...}, "signature": {"algorithm": "Ed25519",
"key_id": "...", "value": "<base64>"}}`; the signature covers SIGNING_DOMAIN followed by the
canonical JSON of `policy`. `load_policy` refuses an unsigned, altered or untrusted one.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts._codec import DecodeError, canonical_json, parse_utc
from deid.contracts.vocabulary import GRANULARITY_ORDER, Audience, DateGranularity
from deid.signing import KeyFormatError, PublicKeys, key_id_for, public_keys_by_id

POLICY_FORMAT = 1
SIGNING_DOMAIN = b"regional-twin-hub/policy/v1\n"
CONTROL_POLICY_TYPE = "control.policy"
DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.json"

# The 90-and-over top-code of 45 CFR 164.514(b)(2)(i)(C): ages over 89 are aggregated into a
# single category whatever the policy's bands say.
AGE_TOP_CODE = 90

KINDS = ("census", "flow", "heartbeat")

# What each kind may release: the fields of the regional records that a policy can list.
# Nothing outside these lists can ever leave, because the transforms build outputs only
# from them.
RELEASABLE_FIELDS: dict[str, frozenset[str]] = {
    "census": frozenset(
        {
            "unit_code",
            "unit_type",
            "as_of",
            "licensed_beds",
            "staffed_beds",
            "surge_beds",
            "occupied_beds",
            "available_beds",
            "blocked_beds",
            "pending_admissions",
            "pending_discharges",
            "ed_waiting",
            "ed_in_treatment",
            "ed_boarding",
            "longest_boarding_minutes",
            "boarding_p50_minutes",
            "boarding_p90_minutes",
            "offload_count",
            "offload_p50_minutes",
            "offload_p90_minutes",
            "source",
            "last_message_at",
            "stale",
            "forecast",
        }
    ),
    "flow": frozenset(
        {
            "surrogate_id",
            "event_type",
            "occurred",
            "unit_code",
            "unit_type",
            "prior_unit_code",
            "prior_unit_type",
            "patient_class",
            "acuity",
            "arrival_mode",
            "age_band",
            "sex",
            "zip3",
            "wait_minutes",
        }
    ),
    "heartbeat": frozenset({"agent_version", "feeds", "outbox_backlog"}),
}

# Census counts subject to small-cell suppression when the audience has a threshold. Durations
# (minutes) and the forecast are not counts of people and are not suppressed.
CENSUS_COUNT_FIELDS: tuple[str, ...] = (
    "licensed_beds",
    "staffed_beds",
    "surge_beds",
    "occupied_beds",
    "available_beds",
    "blocked_beds",
    "pending_admissions",
    "pending_discharges",
    "ed_waiting",
    "ed_in_treatment",
    "ed_boarding",
    "offload_count",
)

# Quasi-identifiers a flow policy may name (k-anonymity is computed over them).
FLOW_QUASI_IDENTIFIERS = frozenset(RELEASABLE_FIELDS["flow"] - {"surrogate_id", "wait_minutes"})


class PolicyError(ValueError):
    """A policy is unsigned, altered, signed by an untrusted key, or not well formed."""


@dataclass(frozen=True, slots=True)
class LDiversity:
    attribute: str
    l: int  # noqa: E741 - "l" is the name of the parameter in the l-diversity literature


@dataclass(frozen=True, slots=True)
class AudienceRule:
    """What one audience receives of one record kind."""

    fields: frozenset[str]
    date_granularity: DateGranularity
    small_cell_threshold: int = 0
    age_bands: tuple[int, ...] = (0, 18, 45, 65, 75, AGE_TOP_CODE)
    quasi_identifiers: tuple[str, ...] = ()
    k: int = 1
    l_diversity: LDiversity | None = None
    max_suppression: float = 1.0

    def band_label(self, age: int) -> str:
        """The age band of `age`, e.g. '45-64'; 90 and over is always '90+'."""
        if age >= AGE_TOP_CODE:
            return f"{AGE_TOP_CODE}+"
        bands = self.age_bands  # ascending, starts at 0, ends at AGE_TOP_CODE
        n = bisect_right(bands, max(age, 0)) - 1
        return f"{bands[n]}-{bands[n + 1] - 1}"


@dataclass(frozen=True, slots=True)
class Policy:
    policy_id: str
    version: int
    issued_at: datetime
    sites: frozenset[str]  # {"*"} = every site
    window_max_records: int
    window_max_seconds: float
    rules: Mapping[str, Mapping[Audience, AudienceRule]]
    document: Mapping[str, Any] = field(repr=False, compare=False)
    signed_by: str | None = None  # key id of the governance key; None = unsigned preview

    def applies_to(self, site_code: str) -> bool:
        return "*" in self.sites or site_code in self.sites

    def rules_for(self, kind: str) -> Mapping[Audience, AudienceRule]:
        return self.rules.get(kind, {})


# -- parsing -------------------------------------------------------------------------------


def _require(cond: object, message: str) -> None:
    if not cond:
        raise PolicyError(message)


def _parse_rule(kind: str, audience: Audience, raw: Any) -> AudienceRule:
    where = f"records.{kind}.{audience.value}"
    _require(isinstance(raw, dict), f"{where}: expected an object")
    known = {
        "fields",
        "date_granularity",
        "small_cell_threshold",
        "age_bands",
        "quasi_identifiers",
        "k",
        "l_diversity",
        "max_suppression",
        "comment",
    }
    unknown = set(raw) - known
    _require(not unknown, f"{where}: unknown keys {sorted(unknown)}")
    fields = raw.get("fields")
    _require(
        isinstance(fields, list) and all(isinstance(f, str) for f in fields),
        f"{where}.fields: a list of field names",
    )
    bad = set(fields) - RELEASABLE_FIELDS[kind]
    _require(not bad, f"{where}.fields: not releasable for {kind}: {sorted(bad)}")
    try:
        granularity = DateGranularity(raw.get("date_granularity", "day"))
    except ValueError:
        raise PolicyError(
            f"{where}.date_granularity: one of {[g.value for g in GRANULARITY_ORDER]}"
        ) from None
    if kind == "flow":
        # Record-level outputs keep the day or coarser; public releases keep the year only.
        _require(
            GRANULARITY_ORDER.index(granularity) >= GRANULARITY_ORDER.index(DateGranularity.DAY),
            f"{where}.date_granularity: patient-level records keep at most the day",
        )
        if audience is Audience.PUBLIC_BENCHMARKS:
            _require(
                granularity is DateGranularity.YEAR,
                f"{where}.date_granularity: public releases keep the year only",
            )
            _require(
                "surrogate_id" not in fields,
                f"{where}.fields: surrogate_id is never released to the public",
            )
    threshold = raw.get("small_cell_threshold", 0)
    _require(isinstance(threshold, int) and threshold >= 0, f"{where}.small_cell_threshold: >= 0")
    bands = raw.get("age_bands", [0, 18, 45, 65, 75, AGE_TOP_CODE])
    _require(
        isinstance(bands, list)
        and bands
        and all(isinstance(b, int) and 0 <= b <= AGE_TOP_CODE for b in bands)
        and bands[0] == 0
        and bands == sorted(set(bands)),
        f"{where}.age_bands: ascending lower bounds from 0, at most {AGE_TOP_CODE}",
    )
    if bands[-1] != AGE_TOP_CODE:
        bands = [*bands, AGE_TOP_CODE]
    qis = raw.get("quasi_identifiers", [])
    _require(
        isinstance(qis, list) and all(isinstance(q, str) for q in qis),
        f"{where}.quasi_identifiers: a list",
    )
    if kind == "flow":
        not_qi = sorted(set(qis) - FLOW_QUASI_IDENTIFIERS)
        _require(not not_qi, f"{where}.quasi_identifiers: not quasi-identifiers {not_qi}")
        _require(set(qis) <= set(fields), f"{where}.quasi_identifiers: must be released fields")
    else:
        _require(not qis, f"{where}.quasi_identifiers: only flow records have them")
    k = raw.get("k", 1)
    _require(isinstance(k, int) and k >= 1, f"{where}.k: an integer >= 1")
    ldiv_raw = raw.get("l_diversity")
    ldiv = None
    if ldiv_raw is not None:
        _require(kind == "flow", f"{where}.l_diversity: only flow records")
        _require(
            isinstance(ldiv_raw, dict)
            and isinstance(ldiv_raw.get("attribute"), str)
            and isinstance(ldiv_raw.get("l"), int)
            and ldiv_raw["l"] >= 1,
            f"{where}.l_diversity: {{attribute, l}}",
        )
        _require(
            ldiv_raw["attribute"] in fields and ldiv_raw["attribute"] not in qis,
            f"{where}.l_diversity.attribute: a released field that is not a quasi-identifier",
        )
        ldiv = LDiversity(attribute=ldiv_raw["attribute"], l=ldiv_raw["l"])
    max_supp = raw.get("max_suppression", 1.0)
    _require(
        isinstance(max_supp, int | float) and 0 <= max_supp <= 1,
        f"{where}.max_suppression: a fraction 0..1",
    )
    return AudienceRule(
        fields=frozenset(fields),
        date_granularity=granularity,
        small_cell_threshold=threshold,
        age_bands=tuple(bands),
        quasi_identifiers=tuple(qis),
        k=k,
        l_diversity=ldiv,
        max_suppression=float(max_supp),
    )


def parse_policy(doc: Mapping[str, Any], *, signed_by: str | None = None) -> Policy:
    """Validate a policy body (the part under "policy" of a signed document). Does not check
    any signature: use `load_policy` for anything that will be applied to a stream."""
    _require(isinstance(doc, dict), "policy: expected an object")
    _require(doc.get("policy_format") == POLICY_FORMAT, f"policy_format: must be {POLICY_FORMAT}")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise PolicyError("version: a positive integer")
    policy_id = doc.get("policy_id")
    if not isinstance(policy_id, str) or not policy_id:
        raise PolicyError("policy_id: a string")
    try:
        issued_at = parse_utc(doc.get("issued_at"), "issued_at")
    except DecodeError as exc:
        raise PolicyError(str(exc)) from None
    sites = doc.get("sites", ["*"])
    _require(
        isinstance(sites, list) and sites and all(isinstance(s, str) for s in sites),
        "sites: a list of site codes or ['*']",
    )
    window = doc.get("release_window", {})
    _require(isinstance(window, dict), "release_window: an object")
    max_records = window.get("max_records", 5000)
    max_seconds = window.get("max_seconds", 5.0)
    _require(isinstance(max_records, int) and max_records >= 1, "release_window.max_records")
    _require(isinstance(max_seconds, int | float) and max_seconds > 0, "release_window.max_seconds")
    records = doc.get("records")
    if not isinstance(records, dict):
        raise PolicyError("records: an object by record kind")
    unknown = set(records) - set(KINDS)
    _require(not unknown, f"records: unknown kinds {sorted(unknown)}")
    rules: dict[str, dict[Audience, AudienceRule]] = {}
    for kind, by_audience in records.items():
        _require(isinstance(by_audience, dict), f"records.{kind}: an object by audience")
        rules[kind] = {}
        for audience_name, raw_rule in by_audience.items():
            try:
                audience = Audience(audience_name)
            except ValueError:
                raise PolicyError(f"records.{kind}: unknown audience") from None
            if kind == "heartbeat":
                _require(
                    audience is Audience.REGIONAL_OPERATIONS,
                    "records.heartbeat: regional_operations only",
                )
            rules[kind][audience] = _parse_rule(kind, audience, raw_rule)
    return Policy(
        policy_id=policy_id,
        version=version,
        issued_at=issued_at,
        sites=frozenset(sites),
        window_max_records=max_records,
        window_max_seconds=float(max_seconds),
        rules=rules,
        document=doc,
        signed_by=signed_by,
    )


# -- signing -------------------------------------------------------------------------------


def sign_policy(doc: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Governance signs a policy body; returns the signed document. The body is validated
    first, so a malformed policy can never carry a valid signature."""
    body = doc.get("policy", doc) if "signature" in doc else doc
    parse_policy(body)
    signature = private_key.sign(SIGNING_DOMAIN + canonical_json(body).encode())
    return {
        "policy": body,
        "signature": {
            "algorithm": "Ed25519",
            "key_id": key_id_for(private_key),
            "value": base64.b64encode(signature).decode(),
        },
    }


def load_policy(data: bytes | str | Mapping[str, Any], trusted_public_keys: PublicKeys) -> Policy:
    """Verify a signed policy document against governance's keys and parse it.
    Raises PolicyError if it is unsigned, altered, signed by another key or malformed."""
    if isinstance(data, bytes | str):
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise PolicyError("policy is not UTF-8 JSON") from None
    else:
        doc = dict(data)
    _require(isinstance(doc, dict), "signed policy: expected an object")
    body, sig = doc.get("policy"), doc.get("signature")
    _require(isinstance(body, dict), "unsigned policy: no 'policy' body")
    _require(isinstance(sig, dict), "unsigned policy: no 'signature'")
    _require(sig.get("algorithm") == "Ed25519", "signature.algorithm: Ed25519")
    try:
        keys = public_keys_by_id(trusted_public_keys)
    except KeyFormatError as exc:
        raise PolicyError(f"trusted key: {exc}") from None
    key = keys.get(sig.get("key_id", "")) if isinstance(sig.get("key_id"), str) else None
    _require(key is not None, "policy signed by a key that is not trusted")
    assert key is not None  # for the type checker  # noqa: S101
    try:
        key.verify(
            base64.b64decode(str(sig.get("value", "")), validate=True),
            SIGNING_DOMAIN + canonical_json(body).encode(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise PolicyError("bad policy signature (altered or not signed by governance)") from None
    return parse_policy(body, signed_by=sig["key_id"])


def load_policy_file(
    path: str | Path, trusted_public_keys: PublicKeys | None, *, allow_unsigned: bool = False
) -> Policy:
    """Read a policy file: signed (verified) or, for previews only, an unsigned body."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "signature" in data or not allow_unsigned:
        _require(trusted_public_keys is not None, "no trusted governance key to verify with")
        assert trusted_public_keys is not None  # noqa: S101
        return load_policy(data, trusted_public_keys)
    return parse_policy(data.get("policy", data))


def default_policy_document() -> dict[str, Any]:
    """The shipped template (unsigned): governance edits, versions and signs it."""
    doc: dict[str, Any] = json.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return doc


def encode_policy_message(
    signed_doc: Mapping[str, Any], *, site_codes: Sequence[str] = ("*",)
) -> bytes:
    """A control-topic message carrying a signed policy, as the hub publishes it."""
    message = {
        "record_type": CONTROL_POLICY_TYPE,
        "site_codes": list(site_codes),
        "signed_policy": signed_doc,
    }
    return json.dumps(message, separators=(",", ":")).encode()


def decode_policy_message(
    data: bytes, site_code: str, trusted_public_keys: PublicKeys
) -> Policy | None:
    """The policy in a control message if it is a policy for this site; None for other control
    records. Raises PolicyError for a policy message that does not verify."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise PolicyError("control message is not JSON") from None
    if not isinstance(msg, dict) or msg.get("record_type") != CONTROL_POLICY_TYPE:
        return None
    targets = msg.get("site_codes", ["*"])
    if not isinstance(targets, list) or ("*" not in targets and site_code not in targets):
        return None
    policy = load_policy(msg.get("signed_policy", {}), trusted_public_keys)
    return policy if policy.applies_to(site_code) else None


def policy_schema() -> dict[str, Any]:
    """JSON Schema of a policy body (docs/schemas/policy.schema.json)."""
    granularities = [g.value for g in GRANULARITY_ORDER]

    def rule(kind: str) -> dict[str, Any]:
        props: dict[str, Any] = {
            "comment": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {"enum": sorted(RELEASABLE_FIELDS[kind])},
                "uniqueItems": True,
            },
            "date_granularity": {"enum": granularities},
            "small_cell_threshold": {
                "type": "integer",
                "minimum": 0,
                "description": "Counts 1..threshold are suppressed (zero is shown).",
            },
            "age_bands": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": AGE_TOP_CODE},
                "description": "Ascending lower bounds from 0; 90+ is always top-coded.",
            },
            "max_suppression": {"type": "number", "minimum": 0, "maximum": 1},
        }
        if kind == "flow":
            props["quasi_identifiers"] = {
                "type": "array",
                "items": {"enum": sorted(FLOW_QUASI_IDENTIFIERS)},
            }
            props["k"] = {"type": "integer", "minimum": 1}
            props["l_diversity"] = {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "attribute": {"type": "string"},
                            "l": {"type": "integer", "minimum": 1},
                        },
                        "required": ["attribute", "l"],
                        "additionalProperties": False,
                    },
                ]
            }
        return {
            "type": "object",
            "properties": props,
            "required": ["fields"],
            "additionalProperties": False,
        }

    audiences = [a.value for a in Audience]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://regional-twin-hub.example/schemas/policy.schema.json",
        "title": "De-identification policy (body)",
        "description": (
            "Signed by governance as {policy: <this>, signature: {algorithm: 'Ed25519', "
            "key_id, value}}. See docs/deid.md."
        ),
        "type": "object",
        "properties": {
            "policy_format": {"const": POLICY_FORMAT},
            "policy_id": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
            "issued_at": {"type": "string", "format": "date-time"},
            "description": {"type": "string"},
            "sites": {"type": "array", "items": {"type": "string"}},
            "release_window": {
                "type": "object",
                "properties": {
                    "max_records": {"type": "integer", "minimum": 1},
                    "max_seconds": {"type": "number", "exclusiveMinimum": 0},
                },
                "additionalProperties": False,
            },
            "records": {
                "type": "object",
                "properties": {
                    kind: {
                        "type": "object",
                        "propertyNames": {"enum": audiences},
                        "additionalProperties": rule(kind),
                    }
                    for kind in KINDS
                },
                "additionalProperties": False,
            },
        },
        "required": ["policy_format", "policy_id", "version", "issued_at", "records"],
        "additionalProperties": True,
    }
