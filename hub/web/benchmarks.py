"""/benchmarks/ — KPIs over time per hospital (Chart.js), the peer ranking of the latest period
shown, filters, and a CSV of exactly what is shown (a governed, audit-logged download)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.decorators import governed
from hub.benchmarks.models import PeriodKind
from hub.registry.models import Hospital
from hub.web import benchmarks_data as data

ACTION = "read_benchmarks"


class _Hospitals(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class BenchmarkFilter(forms.Form):
    kpi = forms.ChoiceField(choices=list(data.LABELS.items()), label="KPI", initial="bed_occupancy")
    period = forms.ChoiceField(choices=PeriodKind.choices, initial=PeriodKind.DAY)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    hospitals = _Hospitals(
        queryset=Hospital.objects.none(),
        required=False,
        help_text="none chosen: every hospital you may see",
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["hospitals"]
        assert isinstance(field, forms.ModelMultipleChoiceField)  # noqa: S101
        field.queryset = data.hospitals(user)

    def filters(self) -> data.Filters:
        v = self.cleaned_data
        return data.Filters(
            kpi=v["kpi"] or "bed_occupancy",
            period=v["period"] or PeriodKind.DAY,
            since=v.get("since"),
            until=v.get("until"),
            hospitals=list(v.get("hospitals") or []),
        )


def _form(request: HttpRequest) -> BenchmarkFilter:
    params = request.GET.copy()
    params.setdefault("kpi", "bed_occupancy")
    params.setdefault("period", PeriodKind.DAY)
    return BenchmarkFilter(params, user=request.user)


@governed(ACTION)
def benchmarks(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    context: dict[str, Any] = {"page_title": "Benchmarks", "filter": form}
    # An invalid filter re-renders the page with the errors next to the fields (200: a page a
    # person asked for, not a failed request).
    if form.is_valid():
        f = form.filters()
        shown = data.rows(request.user, f)
        context |= {
            "kpi": f.kpi,
            "kpi_label": data.LABELS[f.kpi],
            "chart": data.chart(shown, f.kpi),
            "ranking": data.ranking(shown, f.kpi),
            "count": len(shown),
            "export_query": request.GET.urlencode(),
        }
    return render(request, "web/benchmarks.html", context)


@governed(ACTION)
def benchmarks_export(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if not form.is_valid():
        return HttpResponse(
            "invalid filter: "
            + "; ".join(f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    f = form.filters()
    shown = data.rows(request.user, f)
    context = getattr(request, "audit_context", None)
    if context is not None:
        # The request's audit event names every row exported and their hospitals.
        context.add_objects(shown)
        context["detail"] = {"export": "benchmarks.csv", "kpi": f.kpi, "period": f.period}
    response = HttpResponse(data.csv_text(shown, f.kpi), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="benchmarks-{f.kpi}-{f.period}.csv"'
    return response
