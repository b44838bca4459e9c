"""What-if: the slider form queues a run on Celery; the status fragment shows progress, then
the result against the baseline with confidence intervals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from governance.roles import Role
from hub.celery import app as celery_app
from hub.coordination import models as m
from tests.hub.web.coordination_world import person

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORM = {
    "arrivals_pct": "20",
    "beds": "0",
    "or_rooms": "0",
    "ed_clinicians": "0",
    "replications": "2",
}


@pytest.fixture
def eager(settings: Any) -> Iterator[None]:
    """Run Celery tasks in the test process, as a worker would."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def operator(client: Client) -> Any:
    user = person("operator", Role.REGIONAL_OPERATOR)
    client.force_login(user)
    return user


def test_the_form_labels_every_slider_and_shows_its_value(client: Client, operator: Any) -> None:
    html = client.get("/what-if/").content.decode()
    for name in ("arrivals_pct", "beds", "or_rooms", "ed_clinicians"):
        assert f'<label for="id_{name}">' in html
        assert f'type="range" name="{name}"' in html
        assert f'data-slider-output="id_{name}"' in html


def test_a_run_is_queued_then_shows_its_result_with_intervals(
    client: Client, operator: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/what-if/runs/", FORM)
    assert response.status_code == 302
    run = m.ScenarioRun.objects.get()
    assert run.changes == {"arrivals_scale": 1.2}
    assert run.state == "queued"
    fragment = client.get(f"/what-if/runs/{run.pk}/status/").content.decode()
    assert 'hx-trigger="every 2s"' in fragment
    assert "Queued" in fragment

    for callback in callbacks:  # commit: the task runs (eagerly)
        callback()
    run.refresh_from_db()
    assert run.state == "done", run.error
    assert {r["metric"] for r in run.result} >= {"ed.wait_mean_h", "ed.within_4h"}
    fragment = client.get(f"/what-if/runs/{run.pk}/status/").content.decode()
    assert "hx-trigger" not in fragment  # polling stops
    assert 'data-chart="whatif-chart-0"' in fragment
    assert "95% CI" in fragment
    assert "ED wait, mean (h)" in fragment
    page = client.get(f"/what-if/runs/{run.pk}/").content.decode()
    assert "+20%" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**FORM, "arrivals_pct": "0"}, "Move at least one slider"),
        ({**FORM, "arrivals_pct": "500"}, "less than or equal to 50"),
        ({**FORM, "replications": "1000"}, "less than or equal to 50"),
        ({"arrivals_pct": "lots"}, "Enter a whole number"),
    ],
)
def test_bad_runs_rerender_the_form_with_the_error(
    client: Client, operator: Any, data: dict[str, str], message: str
) -> None:
    response = client.post("/what-if/runs/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not m.ScenarioRun.objects.exists()


def test_executives_cannot_run_or_read_scenarios(client: Client) -> None:
    from tests.hub.support import hospital_with_units

    client.force_login(person("exec", Role.EXECUTIVE, hospital_with_units()))
    assert client.post("/what-if/runs/", FORM).status_code == 403
    assert client.get("/what-if/runs/1/status/").status_code == 403
