"""Forecast hook: the live twin → ``simulation.forecast_from_census`` → snapshot quantiles.

The simulation runs in a separate process every ``interval_minutes`` (it is CPU-bound and the
ingest path must keep its latency), from a census without identifiers: per modelled unit its
staffed beds and each patient's elapsed stay; for the ED, counts. Snapshots carry the latest
forecast for their unit; before the first one, or if forecasting fails, ``forecast`` is empty.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deid.contracts import ForecastPoint
from site_agent.config import AgentConfig
from site_agent.twin.census import UnitCensus
from site_agent.twin.model import ACTIVE, Twin

__all__ = ["ForecastCache", "census_input", "run_forecast"]

log = logging.getLogger("site_agent.forecast")


@dataclass(frozen=True, slots=True)
class CensusInput:
    """Picklable, identifier-free input for the forecasting process."""

    time: datetime
    capacity: Mapping[str, int]  # scenario unit -> staffed beds
    elapsed_hours: Mapping[str, tuple[float, ...]]  # scenario unit -> per-patient stay so far
    ed_waiting: int
    ed_in_treatment: int
    ed_boarding: Mapping[str, int]  # scenario unit -> boarders waiting for it


def census_input(twin: Twin, config: AgentConfig, now: datetime) -> CensusInput:
    mapping = {u.code: u.forecast_unit for u in config.units if u.forecast_unit}
    capacity: dict[str, int] = defaultdict(int)
    elapsed: dict[str, list[float]] = defaultdict(list)
    waiting = treating = 0
    boarding: dict[str, int] = defaultdict(int)
    default_dest = next(iter(mapping.values()), "")
    for code, unit in twin.units.items():
        target = mapping.get(code)
        if target:
            capacity[target] += sum(1 for b in unit.beds.values() if b.staffed)
        for p in twin.patients_in(code):
            if p.status != ACTIVE:
                continue
            if unit.is_ed:
                if p.decision_to_admit_at is not None:
                    dest = mapping.get(p.pending_unit or "", "") or default_dest
                    if dest:
                        boarding[dest] += 1
                elif p.bed:
                    treating += 1
                else:
                    waiting += 1
            elif target:
                since = p.admit_at or p.arrival_at or now
                elapsed[target].append(max(0.0, (now - since).total_seconds() / 3600))
    return CensusInput(
        time=now,
        capacity=dict(capacity),
        elapsed_hours={k: tuple(v) for k, v in elapsed.items()},
        ed_waiting=waiting,
        ed_in_treatment=treating,
        ed_boarding=dict(boarding),
    )


def run_forecast(
    data: CensusInput, scenario: str, horizon_hours: int, replications: int
) -> dict[str, list[tuple[int, float, float, float]]]:
    """Runs in the worker process: scenario unit -> [(hours ahead, p10, p50, p90)]."""
    from simulation.forecast import Census, CensusPatient, forecast_from_census
    from simulation.forecast import UnitCensus as SimUnit

    census = Census(
        time=data.time,
        units={
            name: SimUnit(
                capacity=cap,
                patients=tuple(CensusPatient(e) for e in data.elapsed_hours.get(name, ())),
            )
            for name, cap in data.capacity.items()
        },
        ed_waiting=data.ed_waiting,
        ed_in_treatment=data.ed_in_treatment,
        ed_boarding=data.ed_boarding,
    )
    result = forecast_from_census(
        census, scenario, horizon_hours=horizon_hours, replications=replications
    )
    out: dict[str, list[tuple[int, float, float, float]]] = defaultdict(list)
    for row in result.beds.to_dict(orient="records"):
        out[str(row["unit"])].append(
            (int(row["hours_ahead"]), float(row["p10"]), float(row["p50"]), float(row["p90"]))
        )
    return dict(out)


class ForecastCache:
    """The latest forecast per twin unit; ``__call__`` is the Publisher's forecaster hook."""

    def __init__(self, config: AgentConfig) -> None:
        self._by_unit: dict[str, tuple[ForecastPoint, ...]] = {}
        self._share: dict[str, tuple[str, float]] = {}
        self.config = config
        self.updated_at: datetime | None = None

    def __call__(self, census: UnitCensus) -> Sequence[ForecastPoint]:
        return self._by_unit.get(census.unit_code, ())

    def update(
        self,
        twin: Twin,
        result: Mapping[str, Sequence[tuple[int, float, float, float]]],
        at: datetime,
    ) -> None:
        """Spread each scenario unit's forecast over the twin units it models, by their
        share of its staffed beds (several wards may be one unit in the scenario)."""
        staffed: dict[str, int] = {}
        groups: dict[str, list[str]] = defaultdict(list)
        for u in self.config.units:
            if u.forecast_unit and u.code in twin.units:
                staffed[u.code] = sum(1 for b in twin.units[u.code].beds.values() if b.staffed)
                groups[u.forecast_unit].append(u.code)
        fresh: dict[str, tuple[ForecastPoint, ...]] = {}
        for target, codes in groups.items():
            rows = result.get(target)
            if not rows:
                continue
            total = sum(staffed[c] for c in codes) or 1
            for code in codes:
                share = staffed[code] / total
                points: list[ForecastPoint] = []
                for h, p10, p50, p90 in rows:
                    lo, mid, hi = sorted((p10 * share, p50 * share, p90 * share))
                    points.append(
                        ForecastPoint(
                            horizon_hours=h, p10=round(lo, 1), p50=round(mid, 1), p90=round(hi, 1)
                        )
                    )
                fresh[code] = tuple(points)
        self._by_unit = fresh
        self.updated_at = at


def describe(result: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {len(v)} h" for k, v in result.items())
