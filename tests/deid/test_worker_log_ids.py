"""The DE-ID worker logs the ids that follow a record: the envelope's batch id, each record's."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest

from deid.contracts._codec import canonical_json
from deid.contracts.regional import CensusRecord
from deid.contracts.vocabulary import Audience, UnitType
from deid.signing import generate_signing_key
from deid.worker import DeidWorker, WorkerConfig


def _census(site: str) -> CensusRecord:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return CensusRecord(
        site_code=site,
        policy_version=1,
        audience=Audience.REGIONAL_OPERATIONS,
        source_event_id=str(uuid.uuid4()),
        unit_code="W1",
        unit_type=UnitType.MEDICAL_SURGICAL,
        as_of=now.strftime("%Y-%m-%dT%H:%MZ"),
        produced_at=now,
        source="hl7-adt",
        staffed_beds=30,
        occupied_beds=25,
        available_beds=5,
    )


def test_each_sealed_envelope_and_released_record_is_logged_with_its_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Client objects are created without contacting a broker; nothing here connects.
    worker = DeidWorker(
        WorkerConfig(site_code="STM", bootstrap="127.0.0.1:1", envelope_size=2),
        signing_key=generate_signing_key(),
    )
    records = [_census("STM") for _ in range(3)]
    with caplog.at_level(logging.DEBUG, logger="deid.worker"):
        envelopes = worker._envelopes([canonical_json(r.to_dict()) for r in records], None, 1)

    sealed = [json.loads(e)["batch_id"] for e in envelopes]
    assert len(sealed) == 2
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.batch_id for r in infos] == sealed  # type: ignore[attr-defined]
    assert {r.site for r in infos} == {"STM"}  # type: ignore[attr-defined]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert [(r.event_id, r.source_event_id) for r in debug] == [  # type: ignore[attr-defined]
        (r.event_id, r.source_event_id) for r in records
    ]
    assert [r.batch_id for r in debug] == [sealed[0], sealed[0], sealed[1]]  # type: ignore[attr-defined]
