"""Reads behind the diversion page: pending recommendations shaped for display, the decision
history, and each visible hospital's ED status as the census shows it. Callers pass the user;
every queryset goes through ``governance.access.restrict``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from governance.access import restrict
from hub.census.selectors import live_hospitals
from hub.coordination import models as m
from hub.coordination import selectors
from hub.registry.models import Hospital

ACTION = "coordinate"


@dataclass(frozen=True)
class Route:
    class_label: str
    destination: str
    destination_name: str
    travel_minutes: float | None
    share: float
    explanation: str


@dataclass(frozen=True)
class RecommendationView:
    rec: m.DiversionRecommendation
    hospital_name: str
    pressure: int | None
    headline: list[str]
    details: list[str]
    routes: list[Route]
    kept: list[str]
    ed_status: str
    in_force: m.DiversionDecision | None  # an active decision that already says the same


def hospitals(user: Any) -> QuerySet[Hospital]:
    return restrict(Hospital.objects.filter(active=True), user, ACTION).order_by("site_code")


def balancing_regions(user: Any) -> QuerySet[m.RegionState]:
    """The visible regions whose last evaluation load-balances, with their counts (each
    hospital's advice says only that its region is saturated: the counts are the region's)."""
    return (
        restrict(m.RegionState.objects.all(), user, ACTION)
        .filter(mode=m.Mode.LOAD_BALANCING)
        .select_related("region")
        .order_by("region__name")
    )


def _sentences(text: str, names: dict[str, str]) -> list[str]:
    """The explanation one statement a line, hospitals by name: it is written as sentences,
    and a closure's clauses ("Close … at H; send them to G") are joined by semicolons."""
    for code, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"\b{re.escape(code)}\b", name, text)
    parts = re.split(r"(?<=\.)\s+|;\s+(?=[A-Z])", text.strip())
    return [p.rstrip(";").strip() for p in parts if p.strip()]


def ed_statuses(user: Any) -> dict[int, str]:
    """Hospital id → the ED's EMS traffic status (Normal, Advisory, Closed …)."""
    out: dict[int, str] = {}
    for live in live_hospitals(hospitals=hospitals(user), now=timezone.now()):
        out[live.hospital.pk] = live.ed.ems_traffic if live.ed is not None else "Unknown"
    return out


def pending(user: Any) -> list[RecommendationView]:
    qs = selectors.recommendations(
        queryset=restrict(m.DiversionRecommendation.objects.all(), user, ACTION),
        state=m.DiversionRecommendation.State.PENDING,
    )
    recs = list(qs)
    names = dict(
        restrict(
            Hospital.objects.filter(region__in={r.region_id for r in recs}), user, ACTION
        ).values_list("site_code", "name")
    )
    status = ed_statuses(user) if recs else {}
    active = {
        d.hospital_id: d
        for d in restrict(m.DiversionDecision.objects.all(), user, ACTION).filter(
            hospital_id__in={r.hospital_id for r in recs}, state=m.DiversionDecision.State.ACTIVE
        )
    }
    out = []
    for rec in recs:
        sentences = _sentences(rec.explanation, names)
        headline = [s for s in sentences if s.startswith(("Close", "Advis", "Open", "Share"))]
        details = [s for s in sentences if s not in headline]
        routes = [
            Route(
                class_label=str(r.get("class_label") or r.get("class", "")),
                destination=str(r.get("destination", "")),
                destination_name=names.get(str(r.get("destination", "")), "another hospital"),
                travel_minutes=r.get("travel_minutes"),
                share=float(r.get("share") or 0.0),
                explanation=str(r.get("explanation", "")),
            )
            for r in rec.routes
        ]
        out.append(
            RecommendationView(
                rec=rec,
                hospital_name=rec.hospital.name,
                pressure=None if rec.score is None else round(rec.score * 100),
                headline=headline,
                details=details,
                routes=routes,
                kept=[str(k.get("reason", "")) for k in rec.kept],
                ed_status=status.get(rec.hospital_id, "Unknown"),
                in_force=_same(active.get(rec.hospital_id), rec),
            )
        )
    return out


def _same(
    decision: m.DiversionDecision | None, rec: m.DiversionRecommendation
) -> m.DiversionDecision | None:
    if decision is None or decision.status != rec.status:
        return None
    routes = {(r.get("class"), r.get("destination")) for r in decision.routes}
    return (
        decision if routes == {(r.get("class"), r.get("destination")) for r in rec.routes} else None
    )


def decisions(user: Any) -> QuerySet[m.DiversionDecision]:
    return selectors.decisions(queryset=restrict(m.DiversionDecision.objects.all(), user, ACTION))


def recommendation(user: Any, pk: int) -> m.DiversionRecommendation | None:
    return (
        restrict(m.DiversionRecommendation.objects.all(), user, ACTION)
        .select_related("hospital", "region")
        .filter(pk=pk)
        .first()
    )
