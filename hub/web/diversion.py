"""/diversion/ — pending diversion recommendations with their explanations; accept one, or
override it with a reason; the history of decisions. Views call the coordination services."""

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
from hub.coordination import services
from hub.web import diversion_data as data

ACTION = "coordinate"
HISTORY_PAGE = 20


class AcceptForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=500, label="Note (optional)", widget=forms.TextInput
    )


class OverrideForm(forms.Form):
    status = forms.ChoiceField(choices=m.DiversionStatus.choices, label="Status to set instead")
    reason = forms.CharField(
        max_length=1000,
        label="Reason (required)",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you override the recommendation."},
    )

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError("Say why you override the recommendation.")
        return reason


def _page(
    request: HttpRequest,
    *,
    forms_by_rec: dict[int, dict[str, forms.Form]] | None = None,
    status: int = 200,
) -> HttpResponse:
    recs = data.pending(request.user)
    forms_by_rec = forms_by_rec or {}
    cards = [
        {
            "view": r,
            "accept": forms_by_rec.get(r.rec.pk, {}).get("accept")
            or AcceptForm(prefix=f"a{r.rec.pk}"),
            "override": forms_by_rec.get(r.rec.pk, {}).get("override")
            or OverrideForm(prefix=f"o{r.rec.pk}", initial={"status": m.DiversionStatus.OPEN}),
        }
        for r in recs
    ]
    history = Paginator(data.decisions(request.user), HISTORY_PAGE).get_page(
        request.GET.get("page")
    )
    names = {h.pk: h.name for h in data.hospitals(request.user)}
    statuses = data.ed_statuses(request.user)
    context: dict[str, Any] = {
        "page_title": "Diversion",
        "cards": cards,
        "history": history,
        "ed_board": [(names[pk], statuses.get(pk, "Unknown")) for pk in names],
        "balancing": list(data.balancing_regions(request.user)),
    }
    return render(request, "web/diversion.html", context, status=status)


@governed(ACTION)
def diversion(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _rec_or_404(request: HttpRequest, pk: int) -> m.DiversionRecommendation:
    rec = data.recommendation(request.user, pk)
    if rec is None:
        raise Http404("no such recommendation")
    return rec


@governed(ACTION, model=m.DiversionRecommendation)
@require_POST
def diversion_accept(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _rec_or_404(request, pk)
    form = AcceptForm(request.POST, prefix=f"a{pk}")
    if not form.is_valid():
        return _page(request, forms_by_rec={pk: {"accept": form}})
    try:
        services.diversion_accept(
            recommendation=rec, user=request.user, reason=form.cleaned_data["reason"]
        )
    except services.CoordinationError as exc:
        messages.error(request, f"Not accepted: {exc}.")
        return redirect("web:diversion")
    messages.success(
        request, f"Accepted: {rec.hospital.name} set {rec.get_status_display()} (directive sent)."
    )
    return redirect("web:diversion")


@governed(ACTION, model=m.DiversionRecommendation)
@require_POST
def diversion_override(request: HttpRequest, pk: int) -> HttpResponse:
    rec = _rec_or_404(request, pk)
    form = OverrideForm(request.POST, prefix=f"o{pk}")
    if not form.is_valid():
        return _page(request, forms_by_rec={pk: {"override": form}})
    try:
        decision = services.diversion_override(
            recommendation=rec,
            user=request.user,
            reason=form.cleaned_data["reason"],
            status=form.cleaned_data["status"],
        )
    except services.Conflict as exc:
        messages.error(request, f"Not overridden: {exc}.")
        return redirect("web:diversion")
    except services.CoordinationError as exc:
        form.add_error(None, str(exc))
        return _page(request, forms_by_rec={pk: {"override": form}})
    messages.success(
        request,
        f"Overridden: {rec.hospital.name} set {decision.get_status_display()} (directive sent).",
    )
    return redirect("web:diversion")
