"""Reads of regional coordination. Callers pass querysets already restricted by
``governance.access.restrict``; these only shape them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery

from deid.contracts.vocabulary import UnitType
from hub.census.selectors import live_hospitals
from hub.coordination import matching
from hub.coordination import models as m
from hub.registry.models import Hospital, Region


def recommendations(
    *, queryset: QuerySet[m.DiversionRecommendation], state: str | None = None
) -> QuerySet[m.DiversionRecommendation]:
    qs = queryset.select_related("hospital", "region", "region__coordination_state")
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-id")


def decisions(
    *, queryset: QuerySet[m.DiversionDecision], state: str | None = None
) -> QuerySet[m.DiversionDecision]:
    qs = queryset.select_related("hospital", "decided_by", "recommendation")
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-decided_at", "-id")


def alerts(
    *, queryset: QuerySet[m.Alert], state: str | None = None, live: bool = False
) -> QuerySet[m.Alert]:
    # The region's last evaluation: when its live condition alerts were last seen
    # (``Alert.seen_at``).
    evaluated = m.RegionState.objects.filter(region=OuterRef("region")).values("evaluated_at")
    qs = queryset.select_related("hospital").annotate(region_evaluated_at=Subquery(evaluated[:1]))
    if live:
        qs = qs.exclude(state=m.Alert.State.RESOLVED)
    elif state:
        qs = qs.filter(state=state)
    return qs.order_by("-raised_at", "-id")


def decision_trust(*, queryset: QuerySet[m.DiversionDecision]) -> dict[str, int]:
    """How often recommendations were accepted as they stood or overridden: the figure that
    says which advice people trust."""
    counts = dict.fromkeys(m.DiversionDecision.Action.values, 0)
    for action in queryset.values_list("action", flat=True):
        counts[action] = counts.get(action, 0) + 1
    return counts


def sharing_inputs(
    *, region: Region, need: matching.Need, now: datetime
) -> tuple[list[matching.Availability], dict[str, matching.Donor]]:
    """Live availability for a need: free beds of the unit type from the census (fresh
    units only), or the latest declared spares of the item; each donor's surge level and
    freshness."""
    statuses = {
        s.hospital.site_code: s
        for s in m.HospitalStatus.objects.filter(hospital__region=region).select_related("hospital")
    }
    donors: dict[str, matching.Donor] = {}
    availability: list[matching.Availability] = []
    if need.kind is matching.ResourceKind.BED:
        try:
            unit_type = UnitType(need.item).value
        except ValueError:
            return [], {}
        for live in live_hospitals(hospitals=Hospital.objects.filter(region=region), now=now):
            code = live.hospital.site_code
            st = statuses.get(code)
            donors[code] = matching.Donor(
                hospital=code,
                surge_level=st.surge_level if st is not None else None,
                fresh=live.status == "ok",
            )
            availability.extend(
                matching.Availability(
                    hospital=code,
                    kind=need.kind,
                    item=need.item,
                    quantity=float(bed.available),
                    as_of=bed.oldest_observed_at,
                )
                for bed in live.beds
                if bed.unit_type == unit_type and bed.units_fresh and bed.oldest_observed_at
            )
        return availability, donors
    rows = (
        m.ResourceAvailability.objects.filter(
            hospital__region=region, kind=need.kind.value, item=need.item
        )
        .select_related("hospital")
        .order_by("hospital_id", "shift", "-as_of")
    )
    seen: set[tuple[int, str]] = set()
    for row in rows:
        if (row.hospital_id, row.shift) in seen:
            continue  # the latest declaration per hospital and shift counts
        seen.add((row.hospital_id, row.shift))
        code = row.hospital.site_code
        availability.append(
            matching.Availability(
                hospital=code,
                kind=need.kind,
                item=row.item,
                quantity=row.quantity,
                shift=row.shift or None,
                as_of=row.as_of,
            )
        )
        st = statuses.get(code)
        donors[code] = matching.Donor(
            hospital=code, surge_level=st.surge_level if st is not None else None
        )
    return availability, donors
