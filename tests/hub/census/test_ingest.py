"""Envelopes into PostgreSQL: signature, validation, idempotence, live state, partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from deid.contracts import UnitType
from deid.signing import generate_signing_key
from hub.census.erasure import flow_erase_surrogates
from hub.census.ingest import IngestBatch, SiteDirectory, envelope_into_batch
from hub.census.models import CensusSnapshot, FeedState, FlowEvent, UnitState
from hub.census.services import census_ingest_batch, partitions_ensure
from tests.hub.support import UnitFactory, census, enrolled_site, flow, heartbeat, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def ingest(envelopes: list[bytes], *, expected_site: str | None = None) -> IngestBatch:
    batch = IngestBatch()
    directory = SiteDirectory()
    for value in envelopes:
        envelope_into_batch(
            value,
            directory=directory,
            batch=batch,
            received_at=timezone.now(),
            via="kafka",
            expected_site=expected_site,
        )
    census_ingest_batch(batch=batch)
    return batch


def test_a_signed_envelope_is_stored_with_its_provenance() -> None:
    hospital, key, _ = enrolled_site()
    record = census(hospital.site_code, "ICU", unit_type=UnitType.ADULT_ICU, occupied_beds=9)
    batch = ingest([seal([record], key, hospital.site_code)])
    assert batch.rejections == []
    row = CensusSnapshot.objects.get(event_id=record.event_id)
    assert row.hospital_id == hospital.pk
    assert row.unit is not None
    assert row.unit.code == "ICU"
    assert row.occupied_beds == 9
    assert row.key_id == hospital.agents.get().key_id
    assert row.via == "kafka"
    state = UnitState.objects.get(unit=row.unit)
    assert state.event_id == row.event_id


def test_replaying_a_batch_stores_nothing_twice() -> None:
    hospital, key, _ = enrolled_site()
    records: list[Any] = [census(hospital.site_code, "W1") for _ in range(50)]
    records += [flow(hospital.site_code) for _ in range(20)]
    envelope = seal(records, key, hospital.site_code)
    ingest([envelope])
    batch = IngestBatch()
    envelope_into_batch(
        envelope,
        directory=SiteDirectory(),
        batch=batch,
        received_at=timezone.now(),
        via="kafka",
    )
    counts = census_ingest_batch(batch=batch)
    assert (counts.census_inserted, counts.flow_inserted, counts.duplicates) == (0, 0, 70)
    assert CensusSnapshot.objects.filter(site_code=hospital.site_code).count() == 50
    assert FlowEvent.objects.filter(site_code=hospital.site_code).count() == 20


def test_a_batch_mixing_stored_and_new_records_stores_each_once() -> None:
    # The COPY straight into the series fails on the stored rows; the batch then goes
    # through the temporary table and ON CONFLICT DO NOTHING, in the same transaction.
    hospital, key, _ = enrolled_site()
    old = [census(hospital.site_code, "W1") for _ in range(5)]
    new = [census(hospital.site_code, "ICU", unit_type=UnitType.ADULT_ICU) for _ in range(3)]
    ingest([seal(old, key, hospital.site_code)])
    envelope = seal([*old, *new], key, hospital.site_code)
    batch = IngestBatch()
    for value in (envelope, envelope):  # a producer retry: the same message twice
        envelope_into_batch(
            value, directory=SiteDirectory(), batch=batch, received_at=timezone.now(), via="kafka"
        )
    counts = census_ingest_batch(batch=batch)
    assert (counts.census_inserted, counts.duplicates) == (3, 13)
    stored = CensusSnapshot.objects.filter(site_code=hospital.site_code)
    assert sorted(str(e) for e in stored.values_list("event_id", flat=True)) == sorted(
        r.event_id for r in [*old, *new]
    )
    assert UnitState.objects.filter(hospital=hospital).count() == 2


def test_an_envelope_signed_by_another_key_is_refused() -> None:
    hospital, _, _ = enrolled_site()
    batch = ingest([seal([census(hospital.site_code)], generate_signing_key(), hospital.site_code)])
    assert [r.reason for r in batch.rejections] == [
        "envelope: signed with a key not registered for this site"
    ]
    assert not CensusSnapshot.objects.filter(site_code=hospital.site_code).exists()


def test_a_site_cannot_speak_for_another_site() -> None:
    mine, my_key, _ = enrolled_site()
    other, _, _ = enrolled_site()
    forged = seal([census(other.site_code)], my_key, other.site_code)
    batch = ingest([forged])
    assert batch.rejections[0].reason.startswith("envelope:")
    keyed = seal([census(mine.site_code)], my_key, mine.site_code)
    batch = ingest([keyed], expected_site=other.site_code)
    assert batch.rejections[0].reason == "envelope: site differs from the message key or agent"


def test_a_tampered_envelope_is_refused() -> None:
    hospital, key, _ = enrolled_site()
    envelope = seal([census(hospital.site_code, occupied_beds=3)], key, hospital.site_code)
    batch = ingest([envelope.replace(b'"occupied_beds":3', b'"occupied_beds":4')])
    assert batch.rejections
    assert "hash mismatch" in batch.rejections[0].reason


def test_a_revoked_key_stops_verifying() -> None:
    from hub.registry.services import agent_revoke

    hospital, key, _ = enrolled_site()
    agent_revoke(agent=hospital.agents.get())
    batch = ingest([seal([census(hospital.site_code)], key, hospital.site_code)])
    assert batch.rejections


def test_records_for_unknown_units_are_dead_lettered_and_the_rest_stored() -> None:
    hospital, key, _ = enrolled_site()
    good, bad = census(hospital.site_code, "W1"), census(hospital.site_code, "NOPE")
    batch = ingest([seal([good, bad], key, hospital.site_code)])
    assert [(r.event_id, r.reason) for r in batch.rejections] == [
        (bad.event_id, f"unit: 'NOPE' is not a registered unit of {hospital.site_code}")
    ]
    assert CensusSnapshot.objects.filter(event_id=good.event_id).exists()


def test_records_from_the_future_are_refused() -> None:
    hospital, key, _ = enrolled_site()
    future = census(hospital.site_code, at=datetime.now(UTC) + timedelta(hours=2))
    batch = ingest([seal([future], key, hospital.site_code)])
    assert batch.rejections[0].reason == "timestamp: more than 10 minutes in the future"


def test_live_state_never_moves_backwards() -> None:
    hospital, key, _ = enrolled_site()
    now = datetime.now(UTC)
    new = census(hospital.site_code, "W1", at=now, occupied_beds=20)
    old = census(hospital.site_code, "W1", at=now - timedelta(minutes=5), occupied_beds=10)
    ingest([seal([new], key, hospital.site_code)])
    ingest([seal([old], key, hospital.site_code)])  # a late arrival from the site's outbox
    state = UnitState.objects.get(unit__hospital=hospital, unit__code="W1")
    assert state.occupied_beds == 20
    assert CensusSnapshot.objects.filter(unit__code="W1", hospital=hospital).count() == 2


def test_the_newest_snapshot_of_a_batch_wins() -> None:
    hospital, key, _ = enrolled_site()
    now = datetime.now(UTC)
    records = [
        census(hospital.site_code, "W1", at=now - timedelta(minutes=m), occupied_beds=m)
        for m in (3, 0, 7)
    ]
    ingest([seal(records, key, hospital.site_code)])
    assert UnitState.objects.get(unit__hospital=hospital, unit__code="W1").occupied_beds == 0


def _unit_state_updates() -> tuple[int, int]:
    """(updates, of which HOT) of the live unit-state table in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'census_unitstate'"
        )
        updates, hot = cursor.fetchone()
    return int(updates), int(hot)


def test_a_new_snapshot_rewrites_the_live_state_in_place() -> None:
    """Every unit's live row is rewritten each minute: with room on its page (migration
    census/0004) the new version needs no new index entries (a HOT update). 60 units fill
    several pages, which full pages would not leave room on."""
    hospital, key, _ = enrolled_site()
    codes = [f"U{i:02}" for i in range(60)]
    for code in codes:
        UnitFactory(hospital=hospital, code=code, unit_type="medical_surgical", staffed_beds=30)
    now = datetime.now(UTC)
    for minute in (2, 1):
        at = now - timedelta(minutes=minute)
        records = [census(hospital.site_code, code, at=at, occupied_beds=minute) for code in codes]
        ingest([seal(records, key, hospital.site_code)])
    updates, hot = _unit_state_updates()
    assert updates == len(codes)
    assert hot == updates


def test_heartbeats_keep_the_latest_feed_state() -> None:
    hospital, key, _ = enrolled_site()
    now = datetime.now(UTC)
    ingest([seal([heartbeat(hospital.site_code, at=now)], key, hospital.site_code)])
    ingest(
        [
            seal(
                [heartbeat(hospital.site_code, at=now - timedelta(minutes=1))],
                key,
                hospital.site_code,
            )
        ]
    )
    assert FeedState.objects.get(hospital=hospital).produced_at == now


def test_a_row_in_the_default_partition_moves_to_its_new_month() -> None:
    hospital, key, _ = enrolled_site()
    far = date(2031, 5, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'census_censussnapshot_p203105'"
        )
        assert cursor.fetchone()[0] == 0
    record = census(hospital.site_code, "W1")
    batch = IngestBatch()
    envelope_into_batch(
        seal([record], key, hospital.site_code),
        directory=SiteDirectory(),
        batch=batch,
        received_at=timezone.now(),
        via="kafka",
    )
    row = list(batch.census[0])
    row[1] = datetime(2031, 5, 2, tzinfo=UTC)  # observed_at, in a month without a partition
    batch.census[0] = tuple(row)
    census_ingest_batch(batch=batch)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM census_censussnapshot_default")
        assert cursor.fetchone()[0] == 1
        assert partitions_ensure(first_month=far, months=1) == 2
        cursor.execute("SELECT count(*) FROM census_censussnapshot_default")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM census_censussnapshot_p203105")
        assert cursor.fetchone()[0] == 1
    assert CensusSnapshot.objects.filter(event_id=record.event_id).count() == 1


def test_erasure_deletes_a_surrogates_flow_records_only() -> None:
    hospital, key, _ = enrolled_site()
    records = [flow(hospital.site_code, surrogate="s-erase") for _ in range(3)]
    records += [flow(hospital.site_code, surrogate="s-keep")]
    ingest([seal(records, key, hospital.site_code)])
    assert flow_erase_surrogates(site_code=hospital.site_code, surrogate_ids=["s-erase"]) == 3
    assert list(
        FlowEvent.objects.filter(site_code=hospital.site_code).values_list(
            "surrogate_id", flat=True
        )
    ) == ["s-keep"]


def test_a_replay_never_brings_an_erased_patient_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance import erasure

    hospital, key, _ = enrolled_site()
    envelope = seal(
        [flow(hospital.site_code, surrogate="s-gone"), flow(hospital.site_code, surrogate="s-ok")],
        key,
        hospital.site_code,
    )
    monkeypatch.setattr(erasure, "erased_among", lambda ids: {s for s in ids if s == "s-gone"})
    ingest([envelope])
    assert list(
        FlowEvent.objects.filter(site_code=hospital.site_code).values_list(
            "surrogate_id", flat=True
        )
    ) == ["s-ok"]
