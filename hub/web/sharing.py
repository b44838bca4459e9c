"""/sharing/ — resource requests between hospitals and declared availability: open requests
with suggested matches, offers, and only the workflow buttons the request's state allows
(requested → offered → accepted → fulfilled, or cancelled from any open step)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from governance.decorators import governed
from hub.coordination import models as m
from hub.coordination import services
from hub.registry.models import Hospital
from hub.web import sharing_data as data

ACTION = "coordinate"
ITEM_HELP = "beds: a unit type (adult_icu, medical_surgical …); staff: a role; equipment: a device"


class _HospitalField(forms.ModelChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(empty_label="Choose a hospital", **kwargs)

    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


class RequestForm(forms.Form):
    requester = _HospitalField(queryset=Hospital.objects.none(), label="Requesting hospital")
    kind = forms.ChoiceField(choices=m.ResourceKind.choices)
    item = forms.CharField(max_length=64, help_text=ITEM_HELP)
    quantity = forms.FloatField(min_value=0.01)
    shift = forms.CharField(max_length=64, required=False)
    note = forms.CharField(max_length=500, required=False)


class AvailabilityForm(forms.Form):
    hospital = _HospitalField(queryset=Hospital.objects.none())
    kind = forms.ChoiceField(
        choices=[c for c in m.ResourceKind.choices if c[0] != m.ResourceKind.BED],
        help_text="free beds come from the live census",
    )
    item = forms.CharField(max_length=64)
    quantity = forms.FloatField(min_value=0)
    shift = forms.CharField(max_length=64, required=False)


class OfferForm(forms.Form):
    donor = _HospitalField(queryset=Hospital.objects.none())
    quantity = forms.FloatField(min_value=0.01)
    note = forms.CharField(max_length=300, required=False)


class NoteForm(forms.Form):
    note = forms.CharField(max_length=500, required=False)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason for cancelling",
        max_length=500,
        error_messages={"required": "Say why the request is cancelled."},
    )


def _limit(form: forms.Form, user: Any, *names: str) -> forms.Form:
    for name in names:
        field = form.fields[name]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101 (declared above)
        field.queryset = data.hospitals(user)
    return form


def _page(
    request: HttpRequest,
    *,
    request_form: forms.Form | None = None,
    availability_form: forms.Form | None = None,
    step_errors: dict[int, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    step_errors = step_errors or {}
    open_rows = []
    for row in data.requests(user, open_only=True):
        pk = row.request.pk
        bad = step_errors.get(pk)
        open_rows.append(
            {
                "row": row,
                "offer": bad
                if isinstance(bad, OfferForm)
                else _limit(OfferForm(prefix=f"of{pk}"), user, "donor"),
                "cancel": bad if isinstance(bad, CancelForm) else CancelForm(prefix=f"c{pk}"),
            }
        )
    context = {
        "page_title": "Resource sharing",
        "open_rows": open_rows,
        "closed": data.requests(user, open_only=False),
        "availability": data.availability(user),
        "request_form": request_form or _limit(RequestForm(prefix="rq"), user, "requester"),
        "availability_form": availability_form
        or _limit(AvailabilityForm(prefix="av"), user, "hospital"),
    }
    return render(request, "web/sharing.html", context, status=status)


@governed(ACTION)
def sharing(request: HttpRequest) -> HttpResponse:
    return _page(request)


@governed(ACTION)
@require_POST
def sharing_request_create(request: HttpRequest) -> HttpResponse:
    form = _limit(RequestForm(request.POST, prefix="rq"), request.user, "requester")
    if not form.is_valid():
        return _page(request, request_form=form)
    v = form.cleaned_data
    try:
        row = services.resource_request_create(
            requester=v["requester"],
            kind=v["kind"],
            item=v["item"].strip(),
            quantity=v["quantity"],
            shift=v["shift"],
            note=v["note"],
            user=request.user,
        )
    except services.CoordinationError as exc:
        form.add_error(None, str(exc))
        return _page(request, request_form=form)
    messages.success(
        request, f"Request sent: {row.quantity:g} {row.item} for {row.requester.name}."
    )
    return redirect("web:sharing")


@governed(ACTION)
@require_POST
def sharing_availability_declare(request: HttpRequest) -> HttpResponse:
    form = _limit(AvailabilityForm(request.POST, prefix="av"), request.user, "hospital")
    if not form.is_valid():
        return _page(request, availability_form=form)
    v = form.cleaned_data
    try:
        services.resource_availability_declare(
            hospital=v["hospital"],
            kind=v["kind"],
            item=v["item"].strip(),
            quantity=v["quantity"],
            shift=v["shift"],
            user=request.user,
        )
    except services.CoordinationError as exc:
        form.add_error(None, str(exc))
        return _page(request, availability_form=form)
    messages.success(request, f"Availability declared: {v['quantity']:g} {v['item']}.")
    return redirect("web:sharing")


@governed(ACTION, model=m.ResourceRequest)
@require_POST
def sharing_step(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    row = data.request(request.user, pk)
    if row is None:
        raise Http404("no such request")
    user = request.user
    try:
        if step == "offer":
            form: forms.Form = _limit(OfferForm(request.POST, prefix=f"of{pk}"), user, "donor")
            if not form.is_valid():
                return _page(request, step_errors={pk: form})
            services.resource_offer_make(
                request=row,
                donor=form.cleaned_data["donor"],
                quantity=form.cleaned_data["quantity"],
                note=form.cleaned_data["note"],
                user=user,
            )
            done = "Offer recorded."
        elif step == "accept":
            offer = row.offers.filter(pk=request.POST.get("offer") or 0).first()
            if offer is None:
                messages.error(request, "Choose one of the request's offers to accept.")
                return redirect("web:sharing")
            services.resource_offer_accept(offer=offer, user=user)
            done = f"Offer from {offer.donor.name} accepted."
        elif step == "fulfil":
            services.resource_request_fulfil(request=row, user=user)
            done = "Request fulfilled."
        elif step == "cancel":
            form = CancelForm(request.POST, prefix=f"c{pk}")
            if not form.is_valid():
                return _page(request, step_errors={pk: form})
            services.resource_request_cancel(
                request=row, user=user, reason=form.cleaned_data["reason"]
            )
            done = "Request cancelled."
        elif step == "suggest":
            services.resource_request_suggest(request=row)
            done = "Suggestions refreshed from live availability."
        else:
            raise Http404("no such step")
    except services.CoordinationError as exc:
        if step in {"offer", "cancel"} and not isinstance(exc, services.Conflict):
            form.add_error(None, str(exc))
            return _page(request, step_errors={pk: form})
        messages.error(request, f"Not done: {exc}.")
        return redirect("web:sharing")
    messages.success(request, done)
    return redirect("web:sharing")
