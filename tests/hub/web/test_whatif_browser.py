"""What-if and alerts in a real browser: run a what-if, watch its progress, read its
result; acknowledge an alert; the benchmarks chart."""

from __future__ import annotations

from typing import Any

import pytest

from governance.roles import Role
from hub.coordination import models as m
from hub.coordination import scenarios, tasks
from tests.hub.web.conftest import Login, Shot
from tests.hub.web.coordination_world import coord_world, history, person, run_tasks_here

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_run_a_what_if_and_read_its_result(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []

    class _Later:  # hold the run as a busy broker would, to see the progress indicator
        @staticmethod
        def delay(run_id: int) -> None:
            queued.append(run_id)

    monkeypatch.setattr(tasks, "run_scenario", _Later)
    login(page, person("planner", Role.REGIONAL_OPERATOR))
    page.goto("/what-if/")
    slider = page.get_by_label("Arrivals change")
    slider.fill("20")
    assert page.locator('output[data-slider-output="id_arrivals_pct"]').inner_text() == "+20%"
    page.get_by_label("Operating rooms").fill("1")
    assert page.locator('output[data-slider-output="id_or_rooms"]').inner_text() == "+1 rooms"
    page.get_by_label("Replications").fill("3")
    shot(page, "whatif-form")
    page.get_by_role("button", name="Run what-if").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".whatif-progress").is_visible()
    assert "Queued" in page.locator("#whatif-status").inner_text()
    shot(page, "whatif-progress")

    [run_id] = queued
    scenarios.scenario_run_execute(run_id=run_id)  # the worker picks it up
    assert m.ScenarioRun.objects.get(pk=run_id).state == "done"
    page.locator(".whatif-result").wait_for(timeout=15_000)  # htmx polling swaps it in
    result = page.locator(".whatif-result")
    assert "ED wait, mean (h)" in result.inner_text()
    assert "OR utilisation (share)" in result.inner_text()
    assert page.locator('canvas[data-chart="whatif-chart-0"]').is_visible()
    page.wait_for_timeout(300)
    shot(page, "whatif-result")


def test_acknowledge_an_alert(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tasks_here(monkeypatch)
    world = coord_world()
    alert = m.Alert.objects.filter(hospital=world.pressed, kind="threshold").first() or (
        m.Alert.objects.filter(state="open").first()
    )
    assert alert is not None
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/alerts/")
    item = page.locator(f"#alert-{alert.pk}")
    assert "unacked" in (item.get_attribute("class") or "")
    shot(page, "alerts")
    item.get_by_label("Note (optional)").fill("bed manager informed")
    item.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state("networkidle")
    item = page.locator(f"#alert-{alert.pk}")
    assert "unacked" not in (item.get_attribute("class") or "")
    assert "bed manager informed" in item.inner_text()
    assert "Acknowledged:" in page.locator(".messages").inner_text()
    shot(page, "alerts-acknowledged")


def test_benchmarks_chart_and_ranking(
    page: Any, login: Login, shot: Shot, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tasks_here(monkeypatch)
    world = coord_world()
    history(world, days=6)
    login(page, person("operator", Role.REGIONAL_OPERATOR))
    page.goto("/benchmarks/?kpi=bed_occupancy&period=day")
    assert page.locator('canvas[data-chart="bench-chart"]').is_visible()
    table = page.locator("table.coord-table")
    for h in world.hospitals:
        assert h.name in table.inner_text()
    page.wait_for_timeout(300)
    shot(page, "benchmarks")
    page.set_viewport_size({"width": 1366, "height": 768})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "benchmarks-bed_occupancy-day.csv"
