"""The evaluation's database side at scale: the one-query census read gives the rules the
same states as the live board's selector, statuses are written only where they changed,
and the set-based writes store what the model-instance writes stored (real PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from datetime import timezone as tz
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import pq

from hub.census.models import UnitState
from hub.coordination import inputs, services, sqlrows
from hub.coordination import models as m
from hub.registry.models import Hospital, Unit

from .db import World, calm, new_region, saturated, site, unit_state

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _unit(s: Any, code: str, unit_type: str, beds: int) -> Unit:
    return Unit.objects.create(
        hospital=s.hospital, code=code, name=code, unit_type=unit_type, staffed_beds=beds
    )


def test_the_one_query_read_matches_the_live_board_selector_in_every_corner() -> None:
    now = timezone.now()
    old = now - timedelta(minutes=30)
    region = new_region("read-corners")
    forecast = [
        {"horizon_hours": 2, "p50": 3.5, "p10": 1.0, "p90": 6.0},
        {"horizon_hours": 1, "p50": 4.0, "p10": None, "p90": 5.5},
        {"horizon_hours": 3, "p50": None},  # withheld median: no point
    ]
    a = site(region, "A", trauma_level=2, stroke="primary", stemi_pci=True, maternity=True)
    saturated(a, at=now - timedelta(minutes=1))
    unit_state(a.ed, at=now, forecast=forecast, surge_beds=3, ed_waiting=7)
    icu2 = _unit(a, "ICU2", "adult_icu", 8)
    unit_state(icu2, at=now, occupied_beds=4, forecast=forecast[:2])
    unit_state(a.icu, at=now, occupied_beds=9, forecast=forecast[1:2])
    step = _unit(a, "SD", "step_down", 12)
    unit_state(step, at=now, occupied_beds=11, staffed_beds=0)  # 0 staffed: the baseline
    _unit(a, "OR", "operating_room", 6)  # no state, not read by the rules

    b = site(region, "B", stroke="not-a-level")
    calm(b, at=old)  # every unit stale by age
    c = site(region, "C")
    calm(c, at=now)
    unit_state(c.icu, at=now, occupied_beds=None)  # withheld: ICU beds unknown
    unit_state(c.ward, at=now, stale=True)  # flagged by its site: ward unknown
    unit_state(c.ed, at=now, occupied_beds=None, ed_in_treatment=9, ed_boarding=2)
    d = site(region, "D")  # registered units, never reported
    e = site(region, "E")
    calm(e, at=now)
    Unit.objects.filter(pk=e.ed.pk).update(active=False)  # no active ED
    ed2 = _unit(e, "AED", "emergency", 15)  # sorts before "ED": the ED read
    unit_state(ed2, at=now, occupied_beds=3)
    f = site(region, "F")
    calm(f, at=now)
    Hospital.objects.filter(pk=f.hospital.pk).update(active=False)  # not evaluated
    g = Hospital.objects.create(region=region, site_code="G-no-units", name="No units")

    fast = inputs.region_states(region, now)
    reference = inputs.region_states_live(region, now)
    assert fast == reference
    codes = [s.code for s in fast]
    assert f.hospital.site_code not in codes  # inactive
    assert g.site_code in codes
    assert d.hospital.site_code in codes
    by_code = {s.code: s for s in fast}
    assert by_code[a.hospital.site_code].forecast is not None
    assert by_code[c.hospital.site_code].icu_capacity is None
    assert by_code[e.hospital.site_code].ed_capacity == 15


def test_the_census_read_is_one_read_whatever_the_number_of_hospitals(w: World) -> None:
    now = timezone.now()
    with CaptureQueriesContext(connection) as one:
        inputs.region_states(w.region, now)
    for i in range(5):
        calm(site(w.region, f"M{i}"))
    with CaptureQueriesContext(connection) as more:
        states = inputs.region_states(w.region, now)
    with CaptureQueriesContext(connection) as again:
        assert inputs.region_states(w.region, now) == states
    assert len(states) == 10
    # The settings it makes for the evaluation's transaction, the read (with the forecasts'
    # hashes), and the forecasts of the hospitals whose hashes this worker has not seen:
    # none the next time.
    assert len(one.captured_queries) == len(more.captured_queries) == 3
    assert len(again.captured_queries) == 2
    assert "ANY(" in more.captured_queries[2]["sql"]


def test_a_changed_forecast_is_read_again(w: World) -> None:
    now = timezone.now()
    before = {s.code: s for s in inputs.region_states(w.region, now)}
    code = w.h.hospital.site_code
    assert before[code].forecast is None
    forecast = [{"horizon_hours": 2, "p50": 7, "p10": 5, "p90": 9}]
    UnitState.objects.filter(unit=w.h.icu).update(forecast=forecast)
    with CaptureQueriesContext(connection) as read:
        after = {s.code: s for s in inputs.region_states(w.region, now)}
    assert len(read.captured_queries) == 3  # the one hospital's forecasts read again
    got = after[code].forecast
    assert got is not None
    assert [(p.horizon_hours, p.p50, p.p10, p.p90) for p in got.icu] == [(2.0, 7.0, 5.0, 9.0)]
    assert after == {**before, code: after[code]}
    assert after == {s.code: s for s in inputs.region_states_live(w.region, now)}


def test_unchanged_statuses_are_not_rewritten_but_carry_the_evaluation_time(w: World) -> None:
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    before = {s.hospital_id: s for s in m.HospitalStatus.objects.all()}
    assert len(before) == 5
    assert all(s.evaluated_at == t0 for s in before.values())
    calm(w.h)  # the pressed hospital clears; the others stay as they were
    with connection.cursor() as cursor:
        cursor.execute("SELECT hospital_id, xmin::text FROM coordination_hospitalstatus")
        versions = dict(cursor.fetchall())
    t1 = t0 + timedelta(minutes=1)
    services.region_evaluate(region=w.region, now=t1)
    after = {s.hospital_id: s for s in m.HospitalStatus.objects.all()}
    assert all(s.evaluated_at == t1 for s in after.values())
    h = w.h.hospital.pk
    assert after[h].pressure != before[h].pressure
    for hid, s in after.items():
        # Values and the times they hold since are kept; only the evaluation time moved.
        if hid != h:
            fields = list(services._STATUS_FIELDS)
            assert [getattr(s, f) for f in fields] == [getattr(before[hid], f) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute("SELECT hospital_id, xmin::text FROM coordination_hospitalstatus")
        assert all(v != versions[k] for k, v in cursor.fetchall())  # every row touched once


def _evaluation(w: World, now: Any) -> Any:
    return services.evaluate_region(
        inputs.region_states(w.region, now),
        inputs.travel_times(w.region),
        inputs.priors(w.region),
        now,
        services.region_config(w.region),
        region_code=w.region.code,
    )


def test_store_statuses_writes_only_the_rows_that_changed(w: World) -> None:
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    hospitals = dict(Hospital.objects.filter(region=w.region).values_list("site_code", "pk"))
    assert (
        services._store_statuses(w.region, _evaluation(w, t0), hospitals, t0 + timedelta(minutes=1))
        == 0
    )
    calm(w.h)
    assert (
        services._store_statuses(w.region, _evaluation(w, t0), hospitals, t0 + timedelta(minutes=2))
        == 1
    )


@pytest.mark.parametrize("stage_from", [1, 10_000])
def test_renewed_advice_is_written_set_based_and_its_changed_words_stored(
    w: World, monkeypatch: pytest.MonkeyPatch, stage_from: int
) -> None:
    # 1: the renewals stream to a stage by COPY while their words are made; 10,000: held
    # and sent as one statement (a region with fewer than ``STAGE_FROM`` renewals).
    monkeypatch.setattr(sqlrows, "STAGE_FROM", stage_from)
    for s in (w.g, *w.others):
        saturated(s)
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    with CaptureQueriesContext(connection) as q:
        summary = services.region_evaluate(region=w.region, now=t0 + timedelta(minutes=1))
    assert summary.recommendations_renewed >= 1
    updates = [x["sql"] for x in q.captured_queries if x["sql"].startswith("UPDATE")]
    assert not any('CASE WHEN ("' in sql for sql in updates)  # Django's bulk_update
    renewed = [sql for sql in updates if '"coordination_diversionrecommendation"' in sql]
    assert len(renewed) == 1
    rec = m.DiversionRecommendation.objects.get(
        hospital=w.h.hospital, state=m.DiversionRecommendation.State.PENDING
    )
    assert rec.renewed_at == t0 + timedelta(minutes=1)
    assert rec.created_at == t0
    assert isinstance(rec.routes, list)
    assert rec.routes[0]["explanation"]
    assert isinstance(rec.figures, dict)
    # Changed figures: the renewal stores the new words in place.
    m.DiversionRecommendation.objects.filter(pk=rec.pk).update(explanation="stale words", score=-1)
    services.region_evaluate(region=w.region, now=t0 + timedelta(minutes=2))
    again = m.DiversionRecommendation.objects.get(pk=rec.pk)
    assert (again.explanation, again.score) == (rec.explanation, rec.score)
    assert again.renewed_at == t0 + timedelta(minutes=2)


def test_sqlrows_round_trip_json_nulls_and_times(w: World) -> None:
    now = timezone.now()
    h = w.h.hospital
    (pk,) = sqlrows.insert_rows(
        m.Alert,
        {
            "region": [w.region.pk],
            "hospital": [None],
            "key": ["k"],
            "kind": ["threshold"],
            "severity": ["warning"],
            "title": ["t"],
            "message": ["m"],
            "figures": [{"a": [1, None], "b": "é"}],
            "condition": [True],
            "state": ["open"],
            "raised_at": [now],
            "opened_at": [now],
            "last_seen_at": [now],
            "last_notified_at": [now],
            "acknowledge_note": [""],
            "escalation_level": [0],
        },
        returning=True,
    )
    later = now + timedelta(hours=1)
    assert sqlrows.update_rows(m.Alert, "id", [pk], {"hospital": [h.pk], "figures": [{}]}) == 1
    assert sqlrows.set_where_in(m.Alert, "id", [pk], {"last_seen_at": later}) == 1
    a = m.Alert.objects.get(pk=pk)
    assert (a.hospital_id, a.figures, a.last_seen_at, a.raised_at) == (h.pk, {}, later, now)
    assert sqlrows.update_rows(m.Alert, "id", [], {"figures": []}) == 0
    assert sqlrows.insert_rows(m.Alert, {"key": []}) == []


def _summed_reference(forecasts: list[list[dict[str, Any]]]) -> tuple[Any, ...]:
    """The summation as it was written before (per unit points, grouped, summed)."""
    from hub.coordination.state import ForecastPoint

    by_h: dict[float, list[Any]] = {}
    for forecast in forecasts:
        for p in inputs._points(forecast):
            by_h.setdefault(p.horizon_hours, []).append(p)
    return tuple(
        ForecastPoint(
            horizon_hours=h,
            p50=sum(p.p50 for p in ps),
            p10=None if any(p.p10 is None for p in ps) else sum(p.p10 or 0 for p in ps),
            p90=None if any(p.p90 is None for p in ps) else sum(p.p90 or 0 for p in ps),
        )
        for h, ps in sorted(by_h.items())
        if len(ps) == len(forecasts)
    )


@pytest.mark.parametrize("seed", range(40))
def test_forecasts_of_several_units_sum_as_before(seed: int) -> None:
    import random

    rng = random.Random(seed)

    def point() -> dict[str, Any]:
        p: dict[str, Any] = {"horizon_hours": rng.choice([1, 2, 3, 4.0, "x", None])}
        for k in ("p50", "p10", "p90"):
            if rng.random() < 0.8:
                p[k] = rng.choice([None, 0, 0.1, rng.uniform(-20, 20)])
        return p

    units = [[point() for _ in range(rng.randint(0, 7))] for _ in range(rng.randint(2, 4))]
    assert inputs._summed_forecasts(units) == _summed_reference(units)


def _alert_columns(w: World, n: int, now: Any) -> dict[str, list[Any]]:
    return {
        "region": [w.region.pk] * n,
        "hospital": [w.h.hospital.pk if i % 2 else None for i in range(n)],
        "key": [f"k{i}" for i in range(n)],
        "kind": ["threshold"] * n,
        "severity": ["warning"] * n,
        "title": [f"t{i}\ttab\\ and ‘quotes’" for i in range(n)],
        "message": ["line\nbreak"] * n,
        "figures": [{"a": [1, None], "b": "é", "i": i, "f": 0.1 + i} for i in range(n)],
        "condition": [bool(i % 2) for i in range(n)],
        "state": ["open"] * n,
        "raised_at": [now + timedelta(microseconds=i) for i in range(n)],
        "opened_at": [now] * n,
        "last_seen_at": [now] * n,
        "last_notified_at": [now] * n,
        "acknowledge_note": [""] * n,
        "escalation_level": [i % 3 for i in range(n)],
    }


def test_copy_insert_stores_what_the_document_insert_stores(w: World) -> None:
    now = timezone.now()
    columns = _alert_columns(w, 5, now)
    by_copy = sqlrows.copy_insert(m.Alert, columns)
    by_doc = sqlrows.insert_rows(
        m.Alert, {**columns, "key": [f"d{i}" for i in range(5)]}, returning=True
    )
    assert len(by_copy) == 5
    assert by_copy == sorted(by_copy)  # keys in the order of the rows
    fields = ("hospital_id", "title", "message", "figures", "condition", "raised_at")
    copied = [m.Alert.objects.values_list(*fields).get(pk=pk) for pk in by_copy]
    documented = [m.Alert.objects.values_list(*fields).get(pk=pk) for pk in sorted(by_doc)]
    assert copied == documented
    assert copied[1] == (
        w.h.hospital.pk,
        "t1\ttab\\ and ‘quotes’",
        "line\nbreak",
        {"a": [1, None], "b": "é", "i": 1, "f": 1.1},
        True,
        now + timedelta(microseconds=1),
    )
    assert sqlrows.copy_insert(m.Alert, {"key": []}) == []


def test_copy_insert_sends_times_in_any_zone_and_nulls_as_the_same_instants(w: World) -> None:
    now = timezone.now()
    paris = tz(timedelta(hours=1), "CET")
    columns = _alert_columns(w, 3, now)
    columns["raised_at"] = [now, now.astimezone(paris), now + timedelta(microseconds=7)]
    columns["escalated_at"] = [None, now.astimezone(paris), None]
    pks = sqlrows.copy_insert(m.Alert, columns)
    stored = [m.Alert.objects.values_list("raised_at", "escalated_at").get(pk=pk) for pk in pks]
    assert stored == [(now, None), (now, now), (now + timedelta(microseconds=7), None)]


@pytest.mark.parametrize("stage_from", [1, 10_000])
def test_update_rows_staged_or_not_write_the_same(
    w: World, monkeypatch: pytest.MonkeyPatch, stage_from: int
) -> None:
    """From ``STAGE_FROM`` rows the update goes through a COPY-filled temporary table: the
    same rows changed, the same values, the same guard and keys returned."""
    monkeypatch.setattr(sqlrows, "STAGE_FROM", stage_from)
    now = timezone.now()
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 4, now))
    m.Alert.objects.filter(pk=pks[3]).update(state="acknowledged")
    later = now + timedelta(minutes=5)
    for _ in range(2):  # twice in one transaction: the staging table is reused, emptied
        changed = sqlrows.update_rows(
            m.Alert,
            "id",
            pks,
            {
                "figures": [{"n": i} for i in range(4)],
                "title": ["new"] * 4,
                "last_seen_at": [later] * 4,
                "severity": ["critical", "warning", "info", "critical"],
            },
            only_if={"state": ["open"]},
            returning=True,
        )
        assert isinstance(changed, list)
        assert sorted(changed) == pks[:3]
    rows = list(
        m.Alert.objects.filter(pk__in=pks)
        .order_by("pk")
        .values_list("figures", "title", "last_seen_at", "severity")
    )
    assert rows[:3] == [
        ({"n": 0}, "new", later, "critical"),
        ({"n": 1}, "new", later, "warning"),
        ({"n": 2}, "new", later, "info"),
    ]
    assert rows[3][1] == "t3\ttab\\ and ‘quotes’"  # acknowledged meanwhile: left alone
    assert sqlrows.update_rows(m.Alert, "id", pks[:1], {"title": ["again"]}) == 1


def test_a_staged_update_looks_its_rows_up_by_key(w: World) -> None:
    """The stage is keyed. With the target's statistics taken while it held no live row
    (pages but ``reltuples`` 0: analysed after a mass delete, before a region's first rows),
    the planner looped over the target and scanned the unkeyed stage once per row: a
    load-balancing region's 2,900 changed renewals took 2.1 s of the backend instead of
    0.15 s (``bench_coordination_db.py``, collapse steady, 2026-11-24). Those statistics
    cannot be set up inside a test's transaction (VACUUM), so this checks the key is there."""
    n = sqlrows.STAGE_FROM
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, n, timezone.now()))
    assert sqlrows.update_rows(m.Alert, "id", pks, {"title": ["new"] * n}) == n
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = '_stage_coordination_alert'"
        )
        indexes = [row[0] for row in cursor.fetchall()]
    assert len(indexes) == 1
    assert re.search(r"CREATE INDEX .* USING btree \(id\)$", indexes[0]), indexes


@pytest.mark.parametrize("stage_from", [1, 10_000])
def test_a_staged_update_sets_only_the_changed_fields_streamed_or_held(
    w: World, monkeypatch: pytest.MonkeyPatch, stage_from: int
) -> None:
    """``StagedUpdate``: each row sets the masked fields its ``changed`` names (a changed
    ``None`` too) and every ``always`` field; the rest keep what they hold. The same whether
    the rows stream by COPY while the block runs (``stage_from`` 1) or are held and sent as
    ``update_rows`` would (10,000)."""
    monkeypatch.setattr(sqlrows, "STAGE_FROM", stage_from)
    opened: list[int] = []
    open_copy = sqlrows._open_copy

    def recording(cursor: Any, sql: str) -> Any:
        opened.append(len(added))
        return open_copy(cursor, sql)

    monkeypatch.setattr(sqlrows, "_open_copy", recording)
    now = timezone.now()
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 4, now))
    before = {
        pk: m.Alert.objects.values_list("title", "message", "figures").get(pk=pk) for pk in pks
    }
    later = now + timedelta(minutes=3)
    rows = [
        (pks[0], ("new title", "new message", {"x": 1}), (0, 1, 2)),
        (pks[1], ("ignored", "new message 1", None), (1,)),
        (pks[2], ("new title 2", "ignored", {"y": [1.5, None]}), (0, 2)),
        (pks[3], ("ignored", "ignored", None), ()),
    ]
    added: list[int] = []
    with sqlrows.StagedUpdate(
        m.Alert, "id", ("title", "message", "figures"), ("last_seen_at",)
    ) as staged:
        for pk, values, changed in rows:
            staged.add(pk, values, changed, (later,))
            added.append(pk)
    stored = [
        m.Alert.objects.values_list("title", "message", "figures", "last_seen_at").get(pk=pk)
        for pk in pks
    ]
    assert stored == [
        ("new title", "new message", {"x": 1}, later),
        (before[pks[1]][0], "new message 1", before[pks[1]][2], later),
        ("new title 2", before[pks[2]][1], {"y": [1.5, None]}, later),
        (*before[pks[3]], later),
    ]
    # Streamed: the COPY opened at the first row, while the block was still making rows.
    assert opened == ([0] if stage_from == 1 else [])


def test_an_error_while_rows_stream_abandons_the_copy_and_rolls_back(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import transaction

    monkeypatch.setattr(sqlrows, "STAGE_FROM", 1)
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 2, timezone.now()))

    def failing_words() -> None:
        with (
            transaction.atomic(),
            sqlrows.StagedUpdate(m.Alert, "id", ("title",), ()) as staged,
        ):
            staged.add(pks[0], ("written?",), (0,), ())
            raise RuntimeError("words failed")

    with pytest.raises(RuntimeError, match="words failed"):
        failing_words()
    # The COPY ended with the error (the original one propagates), the savepoint rolled
    # back, and the connection works.
    assert sqlrows.update_rows(m.Alert, "id", pks[:1], {"title": ["after"]}) == 1


def test_a_statement_while_rows_stream_raises_instead_of_waiting_for_ever(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import transaction

    monkeypatch.setattr(sqlrows, "STAGE_FROM", 1)
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 1, timezone.now()))

    def reading_while_streaming() -> None:
        with (
            transaction.atomic(),
            sqlrows.StagedUpdate(m.Alert, "id", ("title",), ()) as staged,
        ):
            staged.add(pks[0], ("x",), (0,), ())
            m.Alert.objects.count()  # psycopg holds the connection's lock during COPY

    with pytest.raises(RuntimeError, match="would wait for ever"):
        reading_while_streaming()
    assert m.Alert.objects.filter(pk=pks[0]).count() == 1  # usable again


def test_two_staged_updates_of_one_model_each_get_a_stage_of_their_shape(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlrows, "STAGE_FROM", 1)
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 2, timezone.now()))
    with sqlrows.StagedUpdate(m.Alert, "id", ("title",), ()) as staged:
        staged.add(pks[0], ("first",), (0,), ())
    with sqlrows.StagedUpdate(m.Alert, "id", ("message", "severity"), ()) as staged:
        staged.add(pks[1], ("second", "critical"), (0, 1), ())
    assert m.Alert.objects.values_list("title", flat=True).get(pk=pks[0]) == "first"
    assert m.Alert.objects.values_list("message", "severity").get(pk=pks[1]) == (
        "second",
        "critical",
    )


@pytest.mark.django_db(transaction=True)
def test_a_staged_update_outside_a_transaction_opens_one(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In autocommit the stage (dropped at commit) would be gone before the COPY."""
    monkeypatch.setattr(sqlrows, "STAGE_FROM", 1)
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 2, timezone.now()))
    assert not connection.in_atomic_block
    with sqlrows.StagedUpdate(m.Alert, "id", ("title",), ()) as staged:
        staged.add(pks[0], ("committed",), (0,), ())
        staged.add(pks[1], ("too",), (0,), ())
    assert sorted(m.Alert.objects.filter(pk__in=pks).values_list("title", flat=True)) == [
        "committed",
        "too",
    ]


def _in_pipeline_mode() -> bool:
    """Whether the connection is in libpq's pipeline mode (psycopg's public status)."""
    return connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF


@pytest.mark.parametrize("stage_from", [1, 10_000])
def test_writes_sent_ahead_are_applied_in_order_and_settled(
    w: World, monkeypatch: pytest.MonkeyPatch, stage_from: int
) -> None:
    """Inside ``sent_ahead`` an update without ``returning`` goes without waiting (count
    unknown, −1); a later statement that needs an answer (``returning``, COPY) sees it
    applied; the block leaves pipeline mode, and the rows hold what was sent."""
    monkeypatch.setattr(sqlrows, "STAGE_FROM", stage_from)
    now = timezone.now()
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 3, now))
    later = now + timedelta(minutes=5)
    with sqlrows.sent_ahead():
        assert sqlrows.update_rows(m.Alert, "id", pks, {"title": ["a", "b", "c"]}) == -1
        assert _in_pipeline_mode()  # in flight
        assert sqlrows.set_where_in(m.Alert, "id", pks[:1], {"last_seen_at": later}) == -1
        # Needs an answer: waits for the writes before it, which it sees.
        assert sqlrows.set_where_in(
            m.Alert,
            "id",
            pks,
            {"severity": "critical"},
            only_if={"title": ["a", "c"]},
            returning=True,
        ) in ([pks[0], pks[2]], [pks[2], pks[0]])
        assert not _in_pipeline_mode()
        more = sqlrows.copy_insert(m.Alert, {**_alert_columns(w, 1, now), "key": ["more"]})
        sqlrows.update_tuples(m.Alert, "id", ("message",), [(more[0], "sent ahead")])
    assert not _in_pipeline_mode()
    rows = list(m.Alert.objects.filter(pk__in=pks).order_by("pk").values_list("title", "severity"))
    assert rows == [("a", "critical"), ("b", "warning"), ("c", "critical")]
    assert m.Alert.objects.get(pk=pks[0]).last_seen_at == later
    assert m.Alert.objects.get(pk=more[0]).message == "sent ahead"
    # Outside the block: answered at once, as before.
    assert sqlrows.update_rows(m.Alert, "id", pks, {"title": ["x", "y", "z"]}) == 3


def test_without_pipeline_mode_writes_are_answered_at_once(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client library without pipeline mode (libpq before 14): the block sends nothing
    ahead, and the writes are answered at once as outside it."""
    monkeypatch.setattr(sqlrows, "_PIPELINE_SUPPORTED", lambda: False)
    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 2, timezone.now()))
    with sqlrows.sent_ahead():
        assert sqlrows.update_rows(m.Alert, "id", pks, {"title": ["a", "b"]}) == 2
        assert not _in_pipeline_mode()
    assert sorted(m.Alert.objects.filter(pk__in=pks).values_list("title", flat=True)) == [
        "a",
        "b",
    ]


def _sent_ahead_and_failing(pks: list[int]) -> None:
    from django.db import transaction

    with transaction.atomic(), sqlrows.sent_ahead():
        sqlrows.update_rows(m.Alert, "id", pks, {"title": ["x", "y"]})
        sqlrows.update_rows(m.Alert, "id", pks, {"escalation_level": [1, -1]})  # CHECK >= 0
        assert _in_pipeline_mode()  # nothing has answered yet


def test_an_error_of_a_write_sent_ahead_is_raised_by_the_block(w: World) -> None:
    from django.db import IntegrityError

    pks = sqlrows.copy_insert(m.Alert, _alert_columns(w, 2, timezone.now()))
    with pytest.raises(IntegrityError):
        _sent_ahead_and_failing(pks)
    assert not _in_pipeline_mode()
    # Rolled back to the savepoint, the connection usable.
    assert list(m.Alert.objects.filter(pk__in=pks).values_list("title", flat=True)) != ["x", "y"]


def test_the_evaluation_sends_its_renewals_ahead(w: World) -> None:
    """A load-balancing minute's renewals go to the server without the evaluation waiting
    for them (pipeline mode), and are stored."""
    for s in (w.g, *w.others):
        saturated(s)
    t0 = timezone.now()
    services.region_evaluate(region=w.region, now=t0)
    ahead: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if _in_pipeline_mode():
            ahead.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        services.region_evaluate(region=w.region, now=t0 + timedelta(minutes=1))
    assert any(
        sql.startswith("UPDATE") and "coordination_diversionrecommendation" in sql for sql in ahead
    ), ahead
    assert not _in_pipeline_mode()
    assert m.DiversionRecommendation.objects.filter(
        region=w.region, state="pending", renewed_at=t0 + timedelta(minutes=1)
    ).exists()


def test_stored_words_read_back_as_django_reads_them(w: World) -> None:
    """Without the kept copy the pending advice's and live alerts' words are read as JSON
    text and decoded by orjson: the same values as through the models' JSON fields."""
    for s in (w.g, *w.others):
        saturated(s)
    services.region_evaluate(region=w.region, now=timezone.now())
    pending = services._pending(w.region, None)
    assert pending
    for p in pending.values():
        row = m.DiversionRecommendation.objects.values_list(
            "score", "routes", "kept", "explanation", "figures", "no_forecast"
        ).get(pk=p.pk)
        assert p.words == row
        assert all(type(a) is type(b) for a, b in zip(p.words, row, strict=True))
    live = {row[1]: row for row in services._live_alerts(w.region)}
    words = services._alert_words(live, None)
    assert words
    for pk, kind, title, message, figures in m.Alert.objects.filter(pk__in=list(words)).values_list(
        "pk", "kind", "title", "message", "figures"
    ):
        expected = (
            services.members_of(figures)
            if kind in services.GROUPED_KINDS
            else (title, message, figures)
        )
        assert words[pk] == expected
