"""/what-if/ — sliders for arrivals, beds, ORs and ED staffing; submitting queues a what-if
run on Celery (``coordination.scenarios``); the page polls the run's status fragment with
htmx until the result (each metric against the baseline, with 95% CIs) is in."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from governance.decorators import governed
from hub.coordination import models as m
from hub.coordination import scenarios
from hub.web import whatif_data as data

ACTION = "run_scenario"
# The general hospital scenario's inpatient wards (simulation/scenarios/general_hospital.toml):
# the beds slider adds or removes staffed beds spread over them.
WARDS = ("ward_a", "ward_b")


class _Slider(forms.NumberInput):
    input_type = "range"


def _slider(label: str, low: int, high: int, step: int, unit: str) -> forms.IntegerField:
    field = forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        initial=0,
        widget=_Slider(attrs={"min": low, "max": high, "step": step, "data-unit": unit}),
    )
    field.unit = unit  # type: ignore[attr-defined]  # shown next to the slider's value
    return field


class WhatIfForm(forms.Form):
    arrivals_pct = _slider("Arrivals change", -30, 50, 5, "%")
    beds = _slider("Staffed ward beds", -40, 60, 5, "beds")
    or_rooms = _slider("Operating rooms", -2, 3, 1, "rooms")
    ed_clinicians = _slider("ED clinicians per shift", -2, 4, 1, "clinicians")
    replications = forms.IntegerField(
        label="Replications", min_value=2, max_value=scenarios.MAX_REPLICATIONS, initial=10
    )

    def clean(self) -> dict[str, Any]:
        v = super().clean() or {}
        keys = ("arrivals_pct", "beds", "or_rooms", "ed_clinicians")
        if all(k in v for k in keys) and not any(v[k] for k in keys):
            raise forms.ValidationError(
                "Move at least one slider: the baseline alone has nothing to compare."
            )
        return v

    def changes(self) -> dict[str, Any]:
        v = self.cleaned_data
        out: dict[str, Any] = {}
        if v["arrivals_pct"]:
            out["arrivals_scale"] = round(1 + v["arrivals_pct"] / 100, 4)
        if v["beds"]:
            share, rest = divmod(v["beds"], len(WARDS))
            out["staffed_beds"] = {w: share + (1 if i < rest else 0) for i, w in enumerate(WARDS)}
        if v["or_rooms"]:
            out["or_rooms"] = v["or_rooms"]
        if v["ed_clinicians"]:
            out["ed_clinicians"] = v["ed_clinicians"]
        return out


def _page(request: HttpRequest, form: WhatIfForm, status: int = 200) -> HttpResponse:
    history = Paginator(data.runs(request.user), 10).get_page(request.GET.get("page"))
    return render(
        request,
        "web/whatif.html",
        {"page_title": "What-if", "form": form, "history": history},
        status=status,
    )


@governed(ACTION)
def whatif(request: HttpRequest) -> HttpResponse:
    return _page(request, WhatIfForm())


@governed(ACTION)
@require_POST
def whatif_run(request: HttpRequest) -> HttpResponse:
    form = WhatIfForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    try:
        run = scenarios.scenario_run_queue(
            scenario="general_hospital",
            changes=form.changes(),
            replications=form.cleaned_data["replications"],
            settings={k: form.cleaned_data[k] for k in form.fields},
            user=request.user,
        )
    except scenarios.ScenarioError as exc:
        form.add_error(None, str(exc))
        return _page(request, form)
    messages.success(request, f"What-if run {run.pk} queued.")
    return redirect("web:whatif_detail", pk=run.pk)


def _run(request: HttpRequest, pk: int) -> m.ScenarioRun:
    run = data.runs(request.user).filter(pk=pk).first()
    if run is None:
        raise Http404("no such run")
    return run


def _context(run: m.ScenarioRun) -> dict[str, Any]:
    rows = data.table(run) if run.state == m.ScenarioRun.State.DONE else []
    return {
        "run": run,
        "rows": rows,
        "charts": data.charts(rows),
        "settings": run.settings,
    }


@governed(ACTION, model=m.ScenarioRun)
def whatif_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    return render(
        request, "web/whatif_detail.html", {"page_title": f"What-if run {run.pk}", **_context(run)}
    )


@governed(ACTION, model=m.ScenarioRun)
def whatif_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The htmx fragment: progress while queued or running, the result once done."""
    run = _run(request, pk)
    return render(request, "web/partials/whatif_status.html", _context(run))
