"""Frames for the KPI code, read from the census's de-identified records.

Timestamps in the regional records are generalised by the sharing policy (``observed_at`` is
the start of the released interval), so a length of stay is only as precise as the policy's
granularity: minute-level releases give minute-level KPIs, hour-level releases hour-level
ones. Visits need patients' surrogate ids to pair arrival with departure; an audience whose
policy releases no surrogate yields no ED visits (and the KPIs say so by being empty).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import groupby
from typing import NamedTuple

import pandas as pd
from django.db.models import QuerySet, Sum

from deid.contracts.vocabulary import FlowEventType, UnitType
from hub.census.models import CensusSnapshot, FlowEvent
from hub.registry.models import Hospital, Unit

AUDIENCE = "regional_operations"
ED = UnitType.EMERGENCY.value
ARRIVAL = {FlowEventType.REGISTER.value}
LEAVING = {
    FlowEventType.ADMIT.value,
    FlowEventType.TRANSFER.value,
    FlowEventType.DISCHARGE.value,
}
# Visits may straddle the window's edges: read this much either side.
MARGIN = timedelta(days=2)


class _Event(NamedTuple):
    hospital: int
    surrogate: str
    event: str
    at: datetime
    unit_type: str
    prior_unit_type: str
    acuity: int | None
    arrival_mode: str
    wait_minutes: int | None


def _flow(hospitals: QuerySet[Hospital], since: datetime, until: datetime) -> list[_Event]:
    rows = (
        FlowEvent.objects.filter(
            hospital__in=hospitals,
            audience=AUDIENCE,
            observed_at__gte=since - MARGIN,
            observed_at__lt=until + MARGIN,
        )
        .exclude(surrogate_id="")
        .values_list(
            "hospital_id",
            "surrogate_id",
            "event_type",
            "observed_at",
            "unit_type",
            "prior_unit_type",
            "acuity",
            "arrival_mode",
            "wait_minutes",
        )
        .order_by("hospital_id", "surrogate_id", "observed_at", "event_id")
    )
    return [_Event(*row) for row in rows]


def _patients(events: list[_Event]) -> Iterator[tuple[int, list[_Event]]]:
    for (hospital, _), group in groupby(events, key=lambda e: (e.hospital, e.surrogate)):
        yield hospital, list(group)


def ed_visits(*, hospitals: QuerySet[Hospital], since: datetime, until: datetime) -> pd.DataFrame:
    """One row per ED visit that arrived in [since, until): arrival (registration), departure
    (the first admission, transfer or discharge after it), admitted, acuity, ambulance, and
    decision to admit (departure minus the released ``wait_minutes``) for admissions."""
    out: list[dict[str, object]] = []
    for hospital, events in _patients(_flow(hospitals, since, until)):
        arrival: _Event | None = None
        for e in events:
            if e.event in ARRIVAL and e.unit_type in (ED, ""):
                arrival = e
                continue
            if arrival is None or e.event not in LEAVING:
                continue
            leaving_ed = e.event == FlowEventType.DISCHARGE.value or e.prior_unit_type in (ED, "")
            if not leaving_ed:
                continue
            admitted = e.event != FlowEventType.DISCHARGE.value and e.unit_type != ED
            dta = None
            if admitted and e.wait_minutes is not None:
                dta = e.at - timedelta(minutes=e.wait_minutes)
            if since <= arrival.at < until:
                out.append(
                    {
                        "hospital": hospital,
                        "arrival": arrival.at,
                        "departure": e.at,
                        "admitted": admitted,
                        "decision_to_admit": dta,
                        "acuity": arrival.acuity,
                        "ambulance": arrival.arrival_mode == "ambulance",
                    }
                )
            arrival = None
    frame = pd.DataFrame(
        out,
        columns=[
            "hospital",
            "arrival",
            "departure",
            "admitted",
            "decision_to_admit",
            "acuity",
            "ambulance",
        ],
    )
    frame["decision_to_admit"] = pd.to_datetime(frame["decision_to_admit"], utc=True)
    return frame


def inpatient_stays(
    *, hospitals: QuerySet[Hospital], since: datetime, until: datetime
) -> pd.DataFrame:
    """Stays on inpatient units: from the event that brought the patient into the unit to the
    event that took them out (transfer or discharge)."""
    out: list[dict[str, object]] = []
    for hospital, events in _patients(_flow(hospitals, since, until)):
        current: _Event | None = None
        for e in events:
            if current is not None and (
                e.event == FlowEventType.DISCHARGE.value
                or (e.event == FlowEventType.TRANSFER.value and e.unit_type != current.unit_type)
            ):
                if since <= e.at < until:
                    out.append(
                        {
                            "hospital": hospital,
                            "unit_type": current.unit_type,
                            "admitted_at": current.at,
                            "discharged_at": e.at,
                        }
                    )
                current = None
            entering = e.event in {FlowEventType.ADMIT.value, FlowEventType.TRANSFER.value}
            if entering and e.unit_type not in (ED, ""):
                current = e
    return pd.DataFrame(out, columns=["hospital", "unit_type", "admitted_at", "discharged_at"])


def bed_snapshots(
    *, hospitals: QuerySet[Hospital], since: datetime, until: datetime
) -> pd.DataFrame:
    rows = CensusSnapshot.objects.filter(
        hospital__in=hospitals,
        audience=AUDIENCE,
        observed_at__gte=since,
        observed_at__lt=until,
        occupied_beds__isnull=False,
        staffed_beds__isnull=False,
    ).values_list("hospital_id", "observed_at", "unit_type", "occupied_beds", "staffed_beds")
    return pd.DataFrame(list(rows), columns=["hospital", "at", "unit_type", "occupied", "staffed"])


def staffed_beds(hospitals: QuerySet[Hospital]) -> dict[int, int]:
    """Baseline staffed inpatient beds per hospital (the size of its peer group)."""
    rows = (
        Unit.objects.filter(hospital__in=hospitals, active=True)
        .exclude(unit_type__in=[ED, UnitType.OPERATING_ROOM.value, UnitType.OBSERVATION.value])
        .values("hospital_id")
        .annotate(beds=Sum("staffed_beds"))
    )
    return {r["hospital_id"]: int(r["beds"] or 0) for r in rows}
