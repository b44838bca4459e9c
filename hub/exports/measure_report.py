"""FHIR R5 MeasureReport bed-capacity reports in the style of the HL7 SANER guide.

One summary MeasureReport per hospital (subject: the hospital as an Organization) and one for
the region (aggregated over hospitals with fresh figures). One group "beds" with four
populations, as in SANER's bed measures: all staffed inpatient beds, occupied inpatient beds,
ICU beds, occupied ICU beds. Beds mean staffed beds plus open surge beds, from the units'
latest de-identified snapshots; ED places, operating rooms and observation places are not
inpatient beds (HHS/NHSN definitions, see ``deid.contracts.vocabulary.CAPACITY_GROUP``).

A hospital whose figures are stale is reported with ``status: pending`` (its counts are the
last known ones and the report says it is incomplete); the regional report counts hospitals
with fresh figures only, lists them in ``evaluatedResource``, and is ``pending`` while any
hospital is stale.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hub.census.selectors import HospitalLive, RegionLive

MEASURE = "https://regional-twin-hub.example/fhir/Measure/bed-capacity"
CODE_SYSTEM = "https://regional-twin-hub.example/fhir/CodeSystem/bed-capacity"
# Names follow SANER's CDC/FEMA bed measure codes.
POPULATIONS = (
    ("numTotBeds", "All staffed inpatient beds, including open surge beds"),
    ("numBedsOcc", "Occupied inpatient beds"),
    ("numICUBeds", "Staffed ICU beds (adult, pediatric, neonatal)"),
    ("numICUBedsOcc", "Occupied ICU beds"),
)
INPATIENT_GROUPS = frozenset(
    {"adult_icu", "pediatric_icu", "neonatal_icu", "adult_inpatient", "pediatric_inpatient"}
)
ICU_GROUPS = frozenset({"adult_icu", "pediatric_icu", "neonatal_icu"})
CONTENT_TYPE = "application/fhir+json"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bed_counts(live: HospitalLive) -> dict[str, int]:
    counts = dict.fromkeys((code for code, _ in POPULATIONS), 0)
    for bed in live.beds:
        if bed.capacity_group not in INPATIENT_GROUPS:
            continue
        counts["numTotBeds"] += bed.staffed
        counts["numBedsOcc"] += bed.occupied
        if bed.capacity_group in ICU_GROUPS:
            counts["numICUBeds"] += bed.staffed
            counts["numICUBedsOcc"] += bed.occupied
    return counts


def _report(
    *,
    subject: dict[str, str],
    counts: dict[str, int],
    status: str,
    start: datetime,
    end: datetime,
    now: datetime,
    evaluated: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "id": str(uuid.uuid4()),
        "status": status,
        "type": "summary",
        "dataUpdateType": "snapshot",
        "measure": MEASURE,
        "subject": subject,
        "date": _iso(now),
        "period": {"start": _iso(start), "end": _iso(end)},
        "group": [
            {
                "code": {"coding": [{"system": CODE_SYSTEM, "code": "beds"}]},
                "population": [
                    {
                        "code": {
                            "coding": [{"system": CODE_SYSTEM, "code": code, "display": text}]
                        },
                        "count": counts[code],
                    }
                    for code, text in POPULATIONS
                ],
            }
        ],
    }
    if evaluated:
        report["evaluatedResource"] = evaluated
    return report


def _organization(live: HospitalLive) -> dict[str, str]:
    return {
        "reference": f"Organization/{live.hospital.site_code}",
        "display": live.hospital.name,
    }


def hospital_measure_report(live: HospitalLive, *, now: datetime) -> dict[str, Any]:
    start = live.freshness.observed_at or now
    return _report(
        subject=_organization(live),
        counts=bed_counts(live),
        status="complete" if live.status == "ok" else "pending",
        start=start,
        end=max(start, now),
        now=now,
    )


def region_measure_report(region: RegionLive, *, region_code: str) -> dict[str, Any]:
    now = region.generated_at
    fresh = [h for h in region.hospitals if h.status == "ok"]
    totals = dict.fromkeys((code for code, _ in POPULATIONS), 0)
    for live in fresh:
        for code, value in bed_counts(live).items():
            totals[code] += value
    observed = [h.freshness.observed_at for h in fresh if h.freshness.observed_at]
    start = min(observed) if observed else now
    return _report(
        subject={"reference": f"Group/region-{region_code}", "display": f"region {region_code}"},
        counts=totals,
        status="complete" if len(fresh) == len(region.hospitals) else "pending",
        start=start,
        end=now,
        now=now,
        evaluated=[_organization(h) for h in fresh],
    )


def measure_report_bundle(reports: list[dict[str, Any]], *, now: datetime) -> dict[str, Any]:
    """A collection Bundle of several reports (the region's and each hospital's)."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": _iso(now),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in reports],
    }
