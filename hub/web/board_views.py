"""The regional board: ``/board/`` (the page) and ``/board/tiles/`` (the grid alone, which the
page polls with htmx and swaps in place, keeping its sort and filter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from governance.decorators import governed
from hub.env import env_int
from hub.web.board_charts import free_beds_chart, spark_summary
from hub.web.board_data import (
    BOARD_ACTION,
    SORTS,
    STATUS_FILTERS,
    Tile,
    access_for,
    filter_tiles,
    local_time,
    sort_tiles,
    summarise,
    tiles_for,
)

SPARK_HOURS = 24
FILTERS_FORM_ID = "board-filters"


def poll_seconds() -> int:
    """How often the board refreshes its tiles (``HUB_BOARD_POLL_SECONDS``, default 15):
    a quarter of the site agents' one-minute snapshot interval, so a change shows within
    seconds of arriving without the screen hammering the hub."""
    value = getattr(settings, "HUB_BOARD_POLL_SECONDS", None) or env_int(
        "HUB_BOARD_POLL_SECONDS", 15
    )
    return max(1, int(value))


class BoardQuery(forms.Form):
    """The board's GET parameters; anything unknown falls back to the default."""

    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False, label="Sort by")
    status = forms.ChoiceField(choices=list(STATUS_FILTERS.items()), required=False, label="Show")
    q = forms.CharField(max_length=100, required=False, label="Search by name")

    def values(self) -> tuple[str, str, str]:
        if not self.is_valid():
            return "name", "", ""
        data = self.cleaned_data
        return data.get("sort") or "name", data.get("status") or "", data.get("q") or ""


@dataclass(frozen=True)
class TileView:
    tile: Tile
    chart: dict[str, Any]
    chart_id: str
    chart_summary: str


def _board_context(request: HttpRequest) -> dict[str, Any]:
    query = BoardQuery(request.GET)
    sort, status, search = query.values()
    now = timezone.now()
    access = access_for(request.user)
    tiles = tiles_for(request.user, search=search, now=now, spark_hours=SPARK_HOURS, access=access)
    shown = sort_tiles(filter_tiles(tiles, status), sort)
    views = [
        TileView(
            tile=t,
            chart=free_beds_chart(t.spark_times, t.spark_free, t.forecast, t.timezone),
            chart_id=f"spark-{t.site_code}",
            chart_summary=spark_summary(t.spark_free, t.forecast, SPARK_HOURS),
        )
        for t in shown
    ]
    params = {k: v for k, v in (("sort", sort), ("status", status), ("q", search)) if v}
    if params.get("sort") == "name":
        del params["sort"]
    querystring = urlencode(params)
    context = getattr(request, "audit_context", None)
    if context is not None:
        context["hospital_ids"] = [t.hospital_id for t in shown]
        context["row_count"] = len(shown)
    tz = shown[0].timezone if shown else "UTC"
    generated: datetime = local_time(now, tz)
    return {
        "page_title": "Regional board",
        "form": query,
        "sort": sort,
        "status": status,
        "search": search,
        "sorts": SORTS,
        "status_filters": STATUS_FILTERS,
        "tiles": views,
        "summary": summarise(tiles, now),
        "filtered": len(shown) != len(tiles),
        "generated_at": generated,
        "poll_seconds": poll_seconds(),
        "tiles_url": reverse("web:board-tiles") + (f"?{querystring}" if querystring else ""),
        "board_url": reverse("web:board") + (f"?{querystring}" if querystring else ""),
        "filters_form_id": FILTERS_FORM_ID,
    }


@governed(BOARD_ACTION)
@require_GET
def board(request: HttpRequest) -> HttpResponse:
    """Every hospital the user may see, one tile each, refreshing itself."""
    return render(request, "web/board.html", _board_context(request))


@governed(BOARD_ACTION)
@require_GET
def board_tiles(request: HttpRequest) -> HttpResponse:
    """The tile grid alone (htmx polls it; the filter form swaps it)."""
    context = _board_context(request)
    response = render(request, "web/partials/board_tiles.html", context)
    if request.headers.get("HX-Trigger") == FILTERS_FORM_ID:
        # A new sort or filter: the address bar follows, so a reload or a shared link shows
        # the same board. Polls leave it alone (they carry the same query anyway).
        response["HX-Replace-Url"] = context["board_url"]
    return response
