"""Durability: everything is stored as received, outbox rows commit with the state, and a
restart restores the twin exactly (checkpoint + replay of the messages after it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deid.contracts import PatientPHI, RawCensusSnapshot, RawFlowEvent, RawHeartbeat, decode_record
from deid.keystore import PatientKeyStore
from site_agent.config import AgentConfig
from site_agent.synthetic import SyntheticHospital
from site_agent.twin.census import census_all
from site_agent.twin.model import Twin

from . import conftest
from .conftest import SyncWriter
from .hl7msg import adt, msa


def twin_state(twin: Twin) -> dict[str, object]:
    """Everything that defines the twin, comparable across restarts."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return {
        "patients": {m: p.to_row() for m, p in sorted(twin.patients.items())},
        "beds": sorted(
            (b.key, b.status, b.occupant, b.licensed, b.staffed, b.surge, b.adhoc)
            for u in twin.units.values()
            for b in u.beds.values()
        ),
        "units": {
            u.code: (u.last_source, u.last_message_at, list(u.offloads))
            for u in twin.units.values()
        },
        "census": list(census_all(twin, now)),
    }


def feed(w: SyncWriter, config: AgentConfig, hours: float, seed: int = 7) -> int:
    sim = SyntheticHospital(
        config, datetime(2025, 3, 3, 6, tzinfo=UTC), seed=seed, ed_visits_per_day=40
    )
    messages = [m for _, m in sim.next_messages(sim.start + timedelta(hours=hours))]
    for i in range(0, len(messages), 25):
        w.send(*messages[i : i + 25])
    return len(messages)


def test_restart_restores_the_twin_exactly(config: AgentConfig, keystore: PatientKeyStore) -> None:
    w = SyncWriter(config, keystore)
    n = feed(w, config, hours=30)
    assert n > 50
    before = twin_state(w.writer.twin)
    w.close()  # graceful: final checkpoint
    again = SyncWriter(config, keystore)
    assert twin_state(again.writer.twin) == before
    again.store.close()


def test_crash_after_commit_replays_messages_after_the_checkpoint(
    config: AgentConfig, keystore: PatientKeyStore
) -> None:
    w = SyncWriter(config, keystore)
    feed(w, config, hours=12)
    # Force a checkpoint, then apply more without one: as if the process died right after.
    w.writer._flush_state(force=True)
    w.store.commit() if w.store.conn.in_transaction else None
    checkpoint = w.store.state_seq()
    w.send(adt("A04", "LATE1", cls="E", loc="ED"), adt("A04", "LATE2", cls="E", loc="ED^ED2^1"))
    before = twin_state(w.writer.twin)
    feeds_before = {n: f.last_message_at for n, f in w.writer.feeds.feeds.items()}
    assert w.store.last_message_seq() > checkpoint
    w.store.conn.close()  # no final checkpoint
    again = SyncWriter(config, keystore)
    assert twin_state(again.writer.twin) == before
    assert {n: f.last_message_at for n, f in again.writer.feeds.feeds.items()} == feeds_before
    again.store.close()


def test_every_message_is_stored_as_received(sync_writer: SyncWriter) -> None:
    raw = adt("A04", "M1", cls="E", loc="ED").encode()
    sync_writer.send(raw, b"garbage")
    rows = sync_writer.store.conn.execute("SELECT raw FROM messages ORDER BY seq").fetchall()
    assert [bytes(r[0]) for r in rows] == [raw, b"garbage"]


def test_flow_events_carry_phi_only_encrypted(
    sync_writer: SyncWriter, keystore: PatientKeyStore
) -> None:
    [ack] = sync_writer.send(adt("A04", "SYN777", cls="E", loc="ED", name="Quarry^Wren"))
    assert msa(ack)[0] == "AA"
    rows = sync_writer.store.conn.execute(
        "SELECT key, topic, sealed FROM outbox WHERE record_type = 'raw.flow_event'"
    ).fetchall()
    assert len(rows) == 1
    key, topic, sealed = bytes(rows[0][0]), rows[0][1], rows[0][2]
    config = sync_writer.config
    assert topic == f"site.{config.site_code}.raw.v1"
    assert key == config.site_code.encode()
    assert sealed == 0  # a draft: the relay seals it before it leaves the agent
    [payload] = [v for t, v in sync_writer.sealed_outbox() if t == "raw.flow_event"]
    for identifier in (b"SYN777", b"Quarry", b"Wren", b"900-11-2222", b"example.org", b"12345"):
        assert identifier not in payload
    record = decode_record(payload)
    assert isinstance(record, RawFlowEvent)
    assert (record.event_type, record.unit_code) == ("register", "ED")
    phi = keystore.decrypt_patient(record.surrogate_id, record.key_id, record.phi_ciphertext)
    assert isinstance(phi, PatientPHI)
    assert (phi.mrn, phi.name, phi.zip, phi.ssn) == (
        "SYN777",
        "Wren Quarry",
        "12345",
        "900-11-2222",
    )
    assert str(phi.birth_date) == "1980-01-01"
    assert keystore.surrogate_for("SYN777") == record.surrogate_id


def test_snapshots_and_heartbeats_are_valid_records(sync_writer: SyncWriter) -> None:
    w = sync_writer
    w.send(adt("A04", "M1", cls="E", loc="ED^ED1^1"))
    w.writer.process([__import__("site_agent.ingest", fromlist=["_Tick"])._Tick()])
    by_type: dict[str, list[object]] = {}
    for _, payload in w.sealed_outbox():
        rec = decode_record(payload)
        by_type.setdefault(rec.record_type, []).append(rec)
    snaps = [s for s in by_type["raw.census_snapshot"] if isinstance(s, RawCensusSnapshot)]
    ed = [s for s in snaps if s.unit_code == "ED"][-1]
    assert (ed.ed_in_treatment, ed.occupied_beds, ed.source, ed.stale) == (
        1,
        1,
        "TEST_EHR",
        False,
    )
    assert {s.unit_code for s in snaps} == {"ED", "4W", "ICU"}
    [hb] = by_type["raw.heartbeat"]
    assert isinstance(hb, RawHeartbeat)
    assert [f.name for f in hb.feeds] == ["TEST_EHR"]
    event_ids = [json.loads(p)["event_id"] for _, p in w.sealed_outbox()]
    assert len(event_ids) == len(set(event_ids))


def test_a_silent_feed_goes_stale(sync_writer: SyncWriter) -> None:
    w = sync_writer
    w.send(adt("A04", "M1", cls="E", loc="ED"))
    feeds = w.writer.feeds
    now = datetime.now(UTC)
    assert not feeds.is_stale("TEST_EHR", now)
    assert feeds.is_stale("TEST_EHR", now + timedelta(minutes=11))
    assert not feeds.is_stale("TEST_EHR", now + timedelta(minutes=9))


def test_synthetic_day_applies_without_errors(
    config: AgentConfig, keystore: PatientKeyStore
) -> None:
    w = SyncWriter(config, keystore)
    n = feed(w, config, hours=72, seed=3)
    stats = w.writer.stats
    assert stats.applied == n, stats.by_code
    ed = census_all(w.writer.twin, datetime.now(UTC))
    assert sum(c.occupied_beds for c in ed) > 0
    w.store.close()


def test_keystore_is_shared_for_flow_events(tmp_path: Path) -> None:
    cfg = conftest.make_config(tmp_path / "d")
    ks = PatientKeyStore(tmp_path / "k.sqlite3", conftest.MASTER_KEY)
    w = SyncWriter(cfg, ks)
    w.send(adt("A01", "ONE", loc="4W^401^A"), adt("A02", "ONE", loc="4W^401^B"))
    payloads = [p for t, p in w.sealed_outbox() if t == "raw.flow_event"]
    a, b = (decode_record(p) for p in payloads)
    assert isinstance(a, RawFlowEvent)
    assert isinstance(b, RawFlowEvent)
    assert a.surrogate_id == b.surrogate_id  # the same patient, the same random surrogate
    assert (a.event_type, b.event_type, b.prior_unit_code) == ("admit", "transfer", "4W")
    w.store.close()
    ks.close()
