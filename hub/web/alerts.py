"""/alerts/ — the alerts inbox: newest first, unacknowledged ones highlighted, filter by
hospital and severity, acknowledge with an optional note."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance.access import restrict
from governance.decorators import governed
from hub.coordination import models as m
from hub.coordination import selectors, services
from hub.registry.models import Hospital

ACTION = "coordinate"
PAGE = 25


class AlertFilter(forms.Form):
    hospital = forms.ModelChoiceField(
        queryset=Hospital.objects.none(), required=False, empty_label="All hospitals"
    )
    severity = forms.ChoiceField(
        choices=[("", "All severities"), *m.Severity.choices], required=False
    )
    show = forms.ChoiceField(
        choices=[("live", "Open and acknowledged"), ("all", "All, including resolved")],
        required=False,
        label="Show",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hospital = self.fields["hospital"]
        assert isinstance(hospital, forms.ModelChoiceField)  # noqa: S101 (declared above)
        hospital.queryset = restrict(
            Hospital.objects.filter(active=True),
            user,
            ACTION,
        ).order_by("name")


class AcknowledgeForm(forms.Form):
    note = forms.CharField(required=False, max_length=500, label="Note (optional)")


@governed(ACTION)
def alerts(request: HttpRequest) -> HttpResponse:
    flt = AlertFilter(request.GET or None, user=request.user)
    qs = restrict(m.Alert.objects.all(), request.user, ACTION)
    live = True
    if flt.is_valid():
        v = flt.cleaned_data
        if v.get("hospital"):
            qs = qs.filter(hospital=v["hospital"])
        if v.get("severity"):
            qs = qs.filter(severity=v["severity"])
        live = v.get("show") != "all"
    rows = selectors.alerts(queryset=qs, live=live)
    page = Paginator(rows, PAGE).get_page(request.GET.get("page"))
    unacknowledged = selectors.alerts(
        queryset=restrict(m.Alert.objects.all(), request.user, ACTION), state="open"
    ).count()
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "web/alerts.html",
        {
            "page_title": "Alerts",
            "filter": flt,
            "page": page,
            "unacknowledged": unacknowledged,
            "query": query.urlencode(),
            "ack_form": AcknowledgeForm(),
        },
    )


@governed(ACTION, model=m.Alert)
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = restrict(m.Alert.objects.all(), request.user, ACTION).filter(pk=pk).first()
    if alert is None:
        raise Http404("no such alert")
    form = AcknowledgeForm(request.POST)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    if not form.is_valid():
        messages.error(request, "Not acknowledged: the note is too long (500 characters at most).")
        return redirect(back or "web:alerts")
    try:
        services.alert_acknowledge(alert=alert, user=request.user, note=form.cleaned_data["note"])
    except services.CoordinationError as exc:
        messages.error(request, f"Not acknowledged: {exc}.")
        return redirect(back or "web:alerts")
    messages.success(request, f"Acknowledged: {alert.title}.")
    return redirect(back or "web:alerts")
