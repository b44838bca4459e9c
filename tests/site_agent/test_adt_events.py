"""Every supported ADT event through the writer (parse → twin → store → ACK), and the census."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from site_agent.hl7.adt import AdtEvent
from site_agent.twin.census import UnitCensus, census_for
from site_agent.twin.model import DISCHARGED, Twin

from .conftest import SyncWriter
from .hl7msg import a17, a20, a40, adt, err_code, msa


def census(w: SyncWriter, unit: str) -> UnitCensus:
    twin = w.writer.twin
    return census_for(twin, twin.units[unit], datetime.now(UTC))


def ok(w: SyncWriter, *messages: str) -> None:
    for ack in w.send(*messages, batch=False):
        assert msa(ack)[0] == "AA", ack


def test_a04_registers_an_ed_arrival_and_a08_assigns_a_space(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED", acuity="2", arrival="A", admit="20250301100000"))
    c = census(w, "ED")
    assert (c.ed_waiting, c.ed_in_treatment, c.ed_boarding) == (1, 0, 0)
    ok(w, adt("A08", "M1", cls="E", loc="ED^ED1^1", when="20250301102000"))
    c = census(w, "ED")
    assert (c.ed_waiting, c.ed_in_treatment, c.occupied_beds) == (0, 1, 1)
    # Ambulance arrival at 10:00 (PV1-44), in a treatment space at 10:20: 20 minutes offload.
    assert c.offload_minutes == (20,)
    p = w.writer.twin.patients["M1"]
    assert (p.acuity, p.arrival_mode, p.patient_class) == (2, "ambulance", "emergency")


def test_a14_decision_to_admit_starts_boarding_then_a01_moves_to_the_ward(
    sync_writer: SyncWriter,
) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED^ED1^1"))
    ok(w, adt("A14", "M1", cls="E", loc="ED^ED1^1", pending="4W"))
    ed, ward = census(w, "ED"), census(w, "4W")
    assert ed.ed_boarding == 1
    assert ed.longest_boarding_minutes is not None
    assert ward.pending_admissions == 1
    ok(w, adt("A01", "M1", cls="I", loc="4W^401^A"))
    ed, ward = census(w, "ED"), census(w, "4W")
    assert (ed.ed_boarding, ed.occupied_beds) == (0, 0)
    assert (ward.occupied_beds, ward.pending_admissions) == (1, 0)
    assert ward.available_beds == 3  # 4 staffed, one taken


def test_a02_transfer_moves_the_patient_and_frees_the_old_bed(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A02", "M1", loc="ICU^ICU1^1", prior="4W^401^A"))
    assert census(w, "4W").occupied_beds == 0
    assert census(w, "ICU").occupied_beds == 1


def test_a03_discharge_frees_the_bed_and_a13_cancels_it(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A03", "M1", loc="4W^401^A"))
    assert census(w, "4W").occupied_beds == 0
    assert w.writer.twin.patients["M1"].status == DISCHARGED
    ok(w, adt("A13", "M1", loc="4W^401^A"))
    assert census(w, "4W").occupied_beds == 1


def test_a05_preadmission_counts_as_pending_and_a01_admits(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A05", "M2", cls="P", pending="4W"))
    assert census(w, "4W").pending_admissions == 1
    ok(w, adt("A01", "M2", loc="4W^402^A"))
    c = census(w, "4W")
    assert (c.pending_admissions, c.occupied_beds) == (0, 1)


def test_a06_and_a07_change_the_class(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED^ED2^1"))
    ok(w, adt("A06", "M1", cls="I", loc="ED^ED2^1"))
    assert census(w, "ED").ed_boarding == 1  # inpatient, still in the ED
    ok(w, adt("A07", "M1", cls="O", loc="ED^ED2^1"))
    c = census(w, "ED")
    assert (c.ed_boarding, c.ed_in_treatment) == (0, 1)
    assert w.writer.twin.patients["M1"].patient_class == "outpatient"


def test_a08_observation_class_from_patient_type(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"))
    extra_pv1_18 = adt("A08", "M1", cls="O", loc="4W^401^A").replace(
        "PV1|1|O|4W^401^A", "PV1|1|O|4W^401^A|||||||||||||||OBS"
    )
    ok(w, extra_pv1_18)
    assert w.writer.twin.patients["M1"].patient_class == "observation"


def test_a11_cancel_admit_from_the_ed_returns_the_patient(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED^ED1^1"), adt("A01", "M1", loc="4W^401^A"))
    ok(w, adt("A11", "M1", loc="4W^401^A"))
    assert census(w, "4W").occupied_beds == 0
    assert census(w, "ED").occupied_beds == 1


def test_a11_cancel_registration_forgets_the_visit(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED"), adt("A11", "M1", cls="E", loc="ED"))
    assert "M1" not in w.writer.twin.patients
    assert census(w, "ED").ed_waiting == 0


def test_a12_cancel_transfer_goes_back(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A02", "M1", loc="ICU^ICU1^1"))
    ok(w, adt("A12", "M1", loc="4W^401^A"))
    assert census(w, "ICU").occupied_beds == 0
    assert census(w, "4W").occupied_beds == 1


def test_a15_a26_pending_transfer_and_cancel(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A15", "M1", loc="4W^401^A", pending="ICU"))
    assert census(w, "ICU").pending_admissions == 1
    ok(w, adt("A26", "M1", loc="4W^401^A"))
    assert census(w, "ICU").pending_admissions == 0


def test_a16_pending_discharge_and_a25_cancel(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A16", "M1", loc="4W^401^A"))
    assert census(w, "4W").pending_discharges == 1
    ok(w, adt("A25", "M1", loc="4W^401^A"))
    assert census(w, "4W").pending_discharges == 0


def test_a27_cancels_a_pending_admission(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED^ED1^1"), adt("A14", "M1", cls="E", pending="4W"))
    ok(w, adt("A27", "M1", cls="E", loc="ED^ED1^1"))
    assert census(w, "4W").pending_admissions == 0
    assert census(w, "ED").ed_boarding == 0


def test_a17_swaps_two_patients(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "A1", loc="4W^401^A"), adt("A01", "B1", loc="4W^401^B"))
    ok(w, a17("A1", "4W^401^A", "B1", "4W^401^B"))
    twin = w.writer.twin
    assert (twin.patients["A1"].bed, twin.patients["B1"].bed) == ("B", "A")
    assert twin.units["4W"].beds[("401", "A")].occupant == "B1"


def test_a20_bed_statuses_from_table_0116(sync_writer: SyncWriter) -> None:
    w = sync_writer
    for status, room_bed in zip("CHIK", ("401^A", "401^B", "402^A", "402^B"), strict=True):
        ok(w, a20(f"4W^{room_bed}", status))
    c = census(w, "4W")
    assert (c.blocked_beds, c.available_beds) == (4, 0)
    ok(w, a20("4W^401^A", "U"))
    assert census(w, "4W").available_beds == 1
    ok(w, a20("4W^401^A", "O"))  # the bed feed says occupied: it owns bed state
    assert census(w, "4W").occupied_beds == 1


def test_a21_a22_leave_of_absence_keeps_the_bed(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"), adt("A21", "M1", loc="4W^401^A"))
    assert w.writer.twin.patients["M1"].on_leave
    assert census(w, "4W").occupied_beds == 1
    ok(w, adt("A22", "M1", loc="4W^401^A"))
    assert not w.writer.twin.patients["M1"].on_leave


def test_a40_merge_rekeys_the_prior_record(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "TEMP9", loc="4W^401^A"), a40("REAL1", "TEMP9"))
    twin = w.writer.twin
    assert "TEMP9" not in twin.patients
    assert twin.patients["REAL1"].bed == "A"
    assert twin.units["4W"].beds[("401", "A")].occupant == "REAL1"


def test_hallway_bed_becomes_an_ad_hoc_surge_space(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A04", "M1", cls="E", loc="ED^HALL^3"))
    c = census(w, "ED")
    assert (c.ed_in_treatment, c.surge_beds) == (1, 1)


def test_aliases_map_points_of_care(sync_writer: SyncWriter) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4 WEST^401^A"))
    assert w.writer.twin.patients["M1"].unit_code == "4W"


# --- ACK rules -----------------------------------------------------------------------------------


def test_discharge_of_unknown_patient_is_ae_and_quarantined(sync_writer: SyncWriter) -> None:
    w = sync_writer
    [ack] = w.send(adt("A03", "NOBODY", loc="4W^401^A", control="Q1"))
    assert msa(ack) == ("AE", "Q1")
    assert err_code(ack) == "204"
    row = w.store.conn.execute(
        "SELECT m.status, q.reason FROM quarantine q JOIN messages m ON m.seq = q.message_seq"
    ).fetchone()
    assert row[0] == "quarantined"
    assert "unknown" in row[1]


def test_unknown_point_of_care_is_ae(sync_writer: SyncWriter) -> None:
    [ack] = sync_writer.send(adt("A01", "M1", loc="NOWHERE^1^1"))
    assert (msa(ack)[0], err_code(ack)) == ("AE", "103")


def test_outpatient_registration_elsewhere_is_accepted_and_ignored(sync_writer: SyncWriter) -> None:
    [ack] = sync_writer.send(adt("A04", "M1", cls="O", loc="CLINIC7"))
    assert msa(ack)[0] == "AA"
    assert "M1" not in sync_writer.writer.twin.patients


def test_unsupported_event_and_message_type_are_ar(sync_writer: SyncWriter) -> None:
    oru = adt("A01", "M1").replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01")
    a31 = adt("A01", "M1").replace("ADT^A01^ADT_A01", "ADT^A31^ADT_A05")
    ack_oru, ack_a31 = sync_writer.send(oru, a31)
    assert (msa(ack_oru)[0], err_code(ack_oru)) == ("AR", "200")
    assert (msa(ack_a31)[0], err_code(ack_a31)) == ("AR", "201")


def test_unparseable_input_is_ar_and_stored_as_received(sync_writer: SyncWriter) -> None:
    [ack] = sync_writer.send(b"\x00\x01 not hl7 at all")
    assert msa(ack)[0] == "AR"
    raw = sync_writer.store.conn.execute("SELECT raw, status FROM messages").fetchone()
    assert (bytes(raw[0]), raw[1]) == (b"\x00\x01 not hl7 at all", "rejected")


def test_missing_control_id_is_ar(sync_writer: SyncWriter) -> None:
    msg = adt("A01", "M1", loc="4W^401^A", control="X").replace("|X|P|", "||P|")
    [ack] = sync_writer.send(msg)
    assert (msa(ack)[0], err_code(ack)) == ("AR", "101")


def test_resent_control_id_is_acknowledged_again_and_applied_once(sync_writer: SyncWriter) -> None:
    w = sync_writer
    first = adt("A04", "M1", cls="E", loc="ED", control="DUP1")
    acks = w.send(first, first)  # twice in one batch
    acks += w.send(first)  # and once more later
    assert [msa(a) for a in acks] == [("AA", "DUP1")] * 3
    assert census(w, "ED").ed_waiting == 1
    statuses = [r[0] for r in w.store.conn.execute("SELECT status FROM messages ORDER BY seq")]
    assert statuses == ["applied", "duplicate", "duplicate"]
    flows = w.store.conn.execute(
        "SELECT count(*) FROM outbox WHERE record_type = 'raw.flow_event'"
    ).fetchone()[0]
    assert flows == 1


def test_refused_message_is_looked_at_again_when_resent(sync_writer: SyncWriter) -> None:
    w = sync_writer
    discharge = adt("A03", "LATE1", loc="4W^401^A", control="R1")
    assert msa(w.send(discharge)[0])[0] == "AE"
    assert msa(w.send(adt("A01", "LATE1", loc="4W^401^A"))[0])[0] == "AA"
    assert msa(w.send(discharge)[0])[0] == "AA"
    assert w.writer.twin.patients["LATE1"].status == DISCHARGED


def test_ack_uses_the_senders_delimiters_and_swaps_the_applications(
    sync_writer: SyncWriter,
) -> None:
    msg = (
        "MSH#$%@*#EHR#HOSP#AGENT#SITE#20250301##ADT$A04$ADT_A01#C77#P#2.3\r"
        "EVN#A04\rPID#1##M9$$$G$MR\rPV1#1#E#ED\r"
    )
    [ack] = sync_writer.send(msg)
    text = ack.decode()
    assert text.startswith("MSH#$%@*#AGENT#SITE#EHR#HOSP#")
    assert "MSA#AA#C77" in text
    assert "#2.3" in text.split("\r")[0]


def test_a_bug_while_applying_is_isolated_to_its_message(
    sync_writer: SyncWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = sync_writer
    ok(w, adt("A01", "M1", loc="4W^401^A"))
    from site_agent.twin import model

    original = model.Twin._a02_transfer

    def broken(self: Twin, ev: AdtEvent, src: str) -> None:
        assert ev.identity is not None
        self.patients[ev.identity.mrn].unit_code = "CORRUPTED"
        raise RuntimeError("boom")

    monkeypatch.setitem(model._HANDLERS, "A02", broken)
    acks = w.send(adt("A02", "M1", loc="ICU^ICU1^1"), adt("A01", "M2", loc="4W^401^B"))
    monkeypatch.setitem(model._HANDLERS, "A02", original)
    assert [msa(a)[0] for a in acks] == ["AE", "AA"]
    assert err_code(acks[0]) == "207"
    twin = w.writer.twin
    assert twin.patients["M1"].unit_code == "4W"  # the half-done change was rolled back
    assert twin.patients["M2"].bed == "B"
