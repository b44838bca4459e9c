"""The pure inputs of regional coordination: one hospital's live state, as plain dataclasses.

Nothing here knows Django. ``hub.coordination.inputs`` builds these from the registry and the
census; tests and the benchmark build them by hand. Every figure may be missing (``None``):
a site may not report it, or small-cell suppression may have withheld it. Each group of
figures carries the time it was measured, so the rules can refuse to act on old numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class StrokeLevel(StrEnum):
    """Stroke centre levels, lowest first (Joint Commission / Brain Attack Coalition); the
    same values as ``hub.registry.models.StrokeCapability``."""

    NONE = "none"
    ACUTE_READY = "acute_ready"
    PRIMARY = "primary"
    THROMBECTOMY = "thrombectomy"
    COMPREHENSIVE = "comprehensive"

    @property
    def rank(self) -> int:
        return _STROKE_RANK[self]


_STROKE_RANK = {level: i for i, level in enumerate(StrokeLevel)}


class AmbulanceClass(StrEnum):
    """Classes of ambulance patient a diversion can apply to. Time-critical classes go only to
    a hospital with the capability, and are diverted only when a capable alternative is close."""

    GENERAL = "general"
    MAJOR_TRAUMA = "major_trauma"
    STROKE = "stroke"
    STROKE_THROMBECTOMY = "stroke_thrombectomy"
    STEMI = "stemi"
    PAEDIATRIC = "paediatric"
    BURNS = "burns"
    MATERNITY = "maternity"
    PSYCHIATRIC = "psychiatric"


TIME_CRITICAL: frozenset[AmbulanceClass] = frozenset(
    {
        AmbulanceClass.MAJOR_TRAUMA,
        AmbulanceClass.STROKE,
        AmbulanceClass.STROKE_THROMBECTOMY,
        AmbulanceClass.STEMI,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a hospital can take (the registry's capability columns)."""

    trauma_level: int | None = None  # ACS level I-V as 1-5; None = not a trauma centre
    stroke: StrokeLevel = StrokeLevel.NONE
    stemi_pci: bool = False
    paediatrics: bool = False
    burns: bool = False
    psychiatry: bool = False
    maternity: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastPoint:
    """Forecast *available* places at ``horizon_hours`` ahead: median and the 80% interval
    (p10-p90), as the site agent's forecast (``deid.contracts.regional.RegionalForecastPoint``)
    carries them. Negative values mean more patients than places."""

    horizon_hours: float
    p50: float
    p10: float | None = None
    p90: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    """A hospital's latest forecast of available ED, ICU and ward places."""

    as_of: datetime
    ed: tuple[ForecastPoint, ...] = ()
    icu: tuple[ForecastPoint, ...] = ()
    ward: tuple[ForecastPoint, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HospitalState:
    """One hospital's live state, as of ``as_of`` (the census figures).

    ``offload_as_of`` and the forecast's ``as_of`` are separate because they come from
    separate feeds (ambulance handovers, the site's forecasting job) and age separately.
    """

    code: str
    name: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    as_of: datetime
    feed_stale: bool = False  # the census says the site's feed is overdue (heartbeat/ADT gap)

    # Emergency department
    ed_capacity: int  # staffed ED treatment spaces
    ed_occupied: int  # patients in ED spaces, boarders included
    ed_waiting: int | None = None  # waiting to be seen, not yet in a space
    ed_boarding: int | None = None  # admitted (decision to admit), still in the ED
    longest_boarding_minutes: float | None = None
    over_4h_share: float | None = None  # share of patients in the ED for more than 4 hours
    ambulance_arrivals_per_hour: float | None = None

    # Ambulance handovers (offload): APOT-1 is the 90th percentile over the last hour.
    offload_p90_minutes: float | None = None
    handovers_over_30_min: int | None = None  # in the last hour
    offload_as_of: datetime | None = None

    # Beds
    icu_capacity: int | None = None
    icu_occupied: int | None = None
    ward_capacity: int | None = None  # general and acute (adult inpatient) beds
    ward_occupied: int | None = None
    staffing_gap_share: float | None = None  # rostered shifts unfilled, 0-1

    forecast: Forecast | None = None

    @property
    def ed_free(self) -> int:
        return self.ed_capacity - self.ed_occupied

    @property
    def ed_occupancy(self) -> float | None:
        return self.ed_occupied / self.ed_capacity if self.ed_capacity > 0 else None

    @property
    def icu_free(self) -> int | None:
        if self.icu_capacity is None or self.icu_occupied is None:
            return None
        return self.icu_capacity - self.icu_occupied

    @property
    def icu_occupancy(self) -> float | None:
        return _ratio(self.icu_occupied, self.icu_capacity)

    @property
    def ward_free(self) -> int | None:
        if self.ward_capacity is None or self.ward_occupied is None:
            return None
        return self.ward_capacity - self.ward_occupied

    @property
    def ward_occupancy(self) -> float | None:
        return _ratio(self.ward_occupied, self.ward_capacity)


def _ratio(part: int | None, whole: int | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole


TravelTimes = Mapping[str, Mapping[str, float]]
"""Ambulance travel minutes, ``travel[origin][destination]``; a missing pair means the
destination is not a candidate (too far, or no route known)."""
