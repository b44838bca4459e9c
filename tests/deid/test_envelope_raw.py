"""open_envelope_raw: the same verification as open_envelope, records left as JSON objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deid.contracts import (
    Audience,
    CensusRecord,
    EnvelopeError,
    HeartbeatRecord,
    canonical_json,
    open_envelope,
    seal_envelope,
    sign_envelope,
)
from deid.contracts.envelope import open_envelope_raw
from deid.signing import generate_signing_key


def records() -> list[Any]:
    return [
        CensusRecord(
            site_code="NGH",
            policy_version=3,
            audience=Audience.REGIONAL_OPERATIONS,
            source_event_id="e-1",
            unit_code="ICU",
            occupied_beds=7,
        ),
        HeartbeatRecord(site_code="NGH", agent_version="1.0", policy_version=None),
    ]


def test_the_records_come_back_as_the_json_objects_that_were_signed() -> None:
    key = generate_signing_key()
    signed = records()
    data = sign_envelope(signed, key, site_code="NGH", policy_version=3)
    opened = open_envelope_raw(data, key.public_key(), site_code="NGH")
    decoded = open_envelope(data, key.public_key())
    assert opened.records == [r.to_dict() for r in signed]
    assert (opened.site_code, opened.policy_version, opened.batch_id, opened.key_id) == (
        decoded.site_code,
        decoded.policy_version,
        decoded.batch_id,
        decoded.key_id,
    )
    assert opened.created_at == decoded.created_at


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["records"][0].update(occupied_beds=5),
        lambda e: e["records"].pop(),
        lambda e: e.update(policy_version=4),
        lambda e: e.update(site_code="OTH"),
        lambda e: e.update(batch_id="x"),
        lambda e: e.update(signature=e["signature"][::-1]),
        lambda e: e["record_hashes"].reverse(),
        lambda e: e.pop("signature"),
        lambda e: e.update(records=[1, 2]),
    ],
)
def test_a_tampered_envelope_is_refused(tamper: Any) -> None:
    key = generate_signing_key()
    env = json.loads(sign_envelope(records(), key, site_code="NGH", policy_version=3))
    tamper(env)
    with pytest.raises(EnvelopeError):
        open_envelope_raw(json.dumps(env).encode(), key.public_key())


def test_a_record_of_another_site_or_policy_is_refused_even_when_signed() -> None:
    key = generate_signing_key()
    other_site = [
        *records(),
        CensusRecord(
            site_code="OTH",
            policy_version=3,
            audience=Audience.REGIONAL_OPERATIONS,
            source_event_id="e-2",
        ),
    ]
    # sign_envelope refuses to mix sites, so build the wire form by hand.
    data = seal_envelope(
        [canonical_json(r.to_dict()) for r in other_site], key, site_code="NGH", policy_version=3
    )
    with pytest.raises(EnvelopeError, match="site_code differs"):
        open_envelope_raw(data, key.public_key())
    data = sign_envelope(records(), key, site_code="NGH", policy_version=2)
    with pytest.raises(EnvelopeError, match="policy_version differs"):
        open_envelope_raw(data, key.public_key())
    with pytest.raises(EnvelopeError, match="not registered"):
        open_envelope_raw(data, generate_signing_key().public_key())
