"""/surge/ — OPEL-style levels per hospital and for the region, the parameters and
thresholds behind each, and each level's action checklist (read-only: the back end stores
checklists per level change but no per-item completion)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.decorators import governed
from hub.web import surge_data

ACTION = "coordinate"


@governed(ACTION)
def surge(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/surge.html",
        {"page_title": "Surge", "regions": surge_data.regions(request.user)},
    )
