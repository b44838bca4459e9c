"""Policies: signed by governance, refused when altered, unsigned or malformed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deid.contracts import Audience, DateGranularity
from deid.policy import (
    PolicyError,
    decode_policy_message,
    default_policy_document,
    encode_policy_message,
    load_policy,
    parse_policy,
    sign_policy,
)
from deid.signing import generate_signing_key, public_key_b64


def test_default_policy_is_valid_and_complete(policy_doc: dict[str, Any]) -> None:
    policy = parse_policy(policy_doc)
    assert policy.signed_by is None
    for kind in ("census", "flow"):
        assert set(policy.rules_for(kind)) == set(Audience)
    ops = policy.rules_for("census")[Audience.REGIONAL_OPERATIONS]
    assert ops.small_cell_threshold == 0  # capacity goes to operations exactly
    assert (
        policy.rules_for("flow")[Audience.PUBLIC_BENCHMARKS].date_granularity
        is DateGranularity.YEAR
    )


def test_signed_policy_loads(policy_doc: dict[str, Any], governance_key: Ed25519PrivateKey) -> None:
    signed = sign_policy(policy_doc, governance_key)
    for form in (signed, json.dumps(signed), json.dumps(signed).encode()):
        policy = load_policy(form, governance_key.public_key())
        assert policy.version == 1
        assert policy.signed_by == signed["signature"]["key_id"]
    assert load_policy(
        signed, [public_key_b64(generate_signing_key()), public_key_b64(governance_key)]
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["policy"]["records"]["flow"]["regional_operations"].update(k=1),
        lambda d: d["policy"].update(version=2),
        lambda d: d["policy"]["records"]["census"]["peer_hospitals"]["fields"].append("unit_code"),
        lambda d: d["signature"].update(value=d["signature"]["value"][::-1]),
        lambda d: d.pop("signature"),
        lambda d: d["signature"].update(algorithm="none"),
    ],
)
def test_altered_or_unsigned_policies_are_refused(
    policy_doc: dict[str, Any], governance_key: Ed25519PrivateKey, tamper: Any
) -> None:
    signed = sign_policy(policy_doc, governance_key)
    tamper(signed)
    with pytest.raises(PolicyError):
        load_policy(signed, governance_key.public_key())


def test_unsigned_body_and_untrusted_key_are_refused(policy_doc: dict[str, Any]) -> None:
    other = generate_signing_key()
    with pytest.raises(PolicyError, match="unsigned"):
        load_policy(policy_doc, other.public_key())
    signed = sign_policy(policy_doc, other)
    with pytest.raises(PolicyError, match="not trusted"):
        load_policy(signed, generate_signing_key().public_key())


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("flow", "public_benchmarks", "date_granularity"), "day", "year only"),
        (("flow", "regional_operations", "date_granularity"), "hour", "at most the day"),
        (("flow", "public_benchmarks", "fields"), ["surrogate_id", "event_type"], "never released"),
        (("flow", "regional_operations", "fields"), ["mrn"], "not releasable"),
        (("census", "regional_operations", "fields"), ["name"], "not releasable"),
        (("flow", "regional_operations", "quasi_identifiers"), ["wait_minutes"], "quasi"),
        (("flow", "regional_operations", "age_bands"), [0, 50, 120], "age_bands"),
        (("flow", "regional_operations", "k"), 0, "k"),
    ],
)
def test_malformed_policies_are_refused(
    policy_doc: dict[str, Any], path: tuple[str, str, str], value: Any, message: str
) -> None:
    kind, audience, key = path
    policy_doc["records"][kind][audience][key] = value
    with pytest.raises(PolicyError, match=message):
        parse_policy(policy_doc)
    with pytest.raises(PolicyError):
        sign_policy(policy_doc, generate_signing_key())  # a bad policy can never be signed


def test_age_bands_top_code_at_90(policy_doc: dict[str, Any]) -> None:
    policy_doc["records"]["flow"]["regional_operations"]["age_bands"] = [
        0,
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
    ]
    rule = parse_policy(policy_doc).rules_for("flow")[Audience.REGIONAL_OPERATIONS]
    assert rule.band_label(0) == "0-9"
    assert rule.band_label(85) == "80-89"
    assert rule.band_label(89) == "80-89"
    assert rule.band_label(90) == "90+"
    assert rule.band_label(117) == "90+"


def test_control_messages(policy_doc: dict[str, Any], governance_key: Ed25519PrivateKey) -> None:
    keys = [governance_key.public_key()]
    signed = sign_policy(policy_doc, governance_key)
    msg = encode_policy_message(signed, site_codes=["NGH"])
    policy = decode_policy_message(msg, "NGH", keys)
    assert policy is not None
    assert policy.version == 1
    assert decode_policy_message(msg, "OTHER", keys) is None
    assert decode_policy_message(b'{"record_type": "control.erasure"}', "NGH", keys) is None
    scoped = copy.deepcopy(policy_doc)
    scoped["sites"] = ["OTHER"]
    assert (
        decode_policy_message(
            encode_policy_message(sign_policy(scoped, governance_key)), "NGH", keys
        )
        is None
    )
    forged = json.loads(msg)
    forged["signed_policy"]["policy"]["version"] = 9
    with pytest.raises(PolicyError):
        decode_policy_message(json.dumps(forged).encode(), "NGH", keys)


def test_shipped_template_is_unsigned() -> None:
    doc = default_policy_document()
    assert "signature" not in doc
    with pytest.raises(PolicyError):
        load_policy(doc, generate_signing_key().public_key())
