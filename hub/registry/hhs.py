"""Reading hospital bed capacity from the HHS weekly capacity file (pure, no database).

The file ("COVID-19 Reported Patient Impact and Hospital Capacity by Facility", HHS, as
standardised by DLab) has one row per hospital and week. Two things to respect:

* ``-999999`` means the value was suppressed because it was small (1-3): it is *suppressed*,
  never a number, and a suppressed value is never used as a bed count.
* An empty cell means *not reported* that week. Hospitals report some columns and not
  others (ICU but not adult inpatient, or the other way round), so each figure is taken
  from the latest week in which that figure was reported.

``total_adult_inpatient_avg`` counts all staffed adult inpatient beds, ICU included (HHS
field definitions), so medical-surgical beds are that minus the staffed adult ICU beds.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SUPPRESSED = "-999999"

FIELDS = (
    "total_adult_inpatient_avg",
    "total_adult_used_inpatient_avg",
    "total_staffed_adult_icu_avg",
    "used_staffed_adult_icu_avg",
)


@dataclass(frozen=True)
class Figure:
    """One reported figure: its value (None when suppressed) and the week it is from."""

    value: float | None
    week: str
    suppressed: bool


@dataclass(frozen=True)
class HospitalCapacity:
    hospital_pk: str
    county: str
    fips: str
    figures: dict[str, Figure]

    def value(self, name: str) -> float | None:
        figure = self.figures.get(name)
        return None if figure is None else figure.value

    @property
    def adult_inpatient_beds(self) -> int | None:
        v = self.value("total_adult_inpatient_avg")
        return None if v is None else round(v)

    @property
    def adult_icu_beds(self) -> int | None:
        v = self.value("total_staffed_adult_icu_avg")
        return None if v is None else round(v)

    @property
    def complete(self) -> bool:
        """Both bed counts known (not suppressed, not missing) and consistent."""
        inpatient, icu = self.adult_inpatient_beds, self.adult_icu_beds
        return inpatient is not None and icu is not None and icu >= 2 and inpatient > icu


def parse_cell(text: str | None) -> tuple[float | None, bool] | None:
    """None when not reported; (None, True) when suppressed; (value, False) otherwise."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if text in (SUPPRESSED, "-999999.0"):
        return None, True
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or value < 0:
        return None
    return value, False


def read_capacity(rows: Iterable[dict[str, str]]) -> dict[str, HospitalCapacity]:
    """Latest reported value of each figure per hospital (a suppressed report counts as
    reported: it says the figure was small that week, so an older, larger number would be
    wrong)."""
    latest: dict[str, dict[str, Figure]] = {}
    places: dict[str, tuple[str, str]] = {}
    for row in rows:
        pk = (row.get("hospital_pk") or "").strip()
        week = (row.get("date") or "").strip()
        if not pk or not week:
            continue
        places[pk] = ((row.get("county") or "").strip(), (row.get("fips") or "").strip())
        figures = latest.setdefault(pk, {})
        for name in FIELDS:
            cell = parse_cell(row.get(name))
            if cell is None:
                continue
            current = figures.get(name)
            if current is None or week >= current.week:
                figures[name] = Figure(cell[0], week, cell[1])
    return {
        pk: HospitalCapacity(pk, places[pk][0], places[pk][1], figures)
        for pk, figures in latest.items()
    }


def read_capacity_file(path: Path) -> dict[str, HospitalCapacity]:
    with path.open(newline="", encoding="utf-8") as fh:
        return read_capacity(csv.DictReader(fh))


def pick_spread(candidates: list[HospitalCapacity], n: int) -> list[HospitalCapacity]:
    """``n`` hospitals spread over the size range (largest, smallest and between), so a demo
    region has a major centre and community hospitals, deterministically."""
    ranked = sorted(candidates, key=lambda c: (-(c.adult_inpatient_beds or 0), c.hospital_pk))
    if n >= len(ranked):
        return ranked
    if n == 1:
        return ranked[:1]
    step = (len(ranked) - 1) / (n - 1)
    picked = {round(i * step) for i in range(n)}
    return [ranked[i] for i in sorted(picked)]
