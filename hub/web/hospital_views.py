"""``/hospitals/<site code>/``: one hospital in the detail the user's role allows."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from governance.decorators import governed
from hub.web.board_data import BOARD_ACTION, age_text
from hub.web.hospital_data import HOURS_CHOICES, hospital_detail


@governed(BOARD_ACTION)
@require_GET
def hospital(request: HttpRequest, site_code: str) -> HttpResponse:
    """404, never 403, for a hospital the user may not see: the answer must not tell
    whether it exists."""
    try:
        hours = int(request.GET.get("hours", HOURS_CHOICES[0]))
    except ValueError:
        hours = HOURS_CHOICES[0]
    if hours not in HOURS_CHOICES:
        hours = HOURS_CHOICES[0]
    detail = hospital_detail(request.user, site_code, hours=hours)
    if detail is None:
        raise Http404("no such hospital, or not visible to you")
    context = getattr(request, "audit_context", None)
    if context is not None:
        context["target"] = detail.hospital
        context["hospital_ids"] = [detail.hospital.pk]
        context["row_count"] = len(detail.units or [])
    return render(
        request,
        "web/hospital.html",
        {
            "page_title": detail.hospital.name,
            "d": detail,
            "t": detail.tile,
            "hours_choices": HOURS_CHOICES,
            "ed_age": age_text(detail.ed.freshness.age_seconds) if detail.ed else "",
        },
    )
