"""Seeding a region of real-sized hospitals from the HHS capacity data, for demos and tests.

Real: the bed counts (staffed adult ICU and adult inpatient beds, latest week reported). Made
up, and labelled so: names, ED size, capabilities, positions within a county, travel times.
Everything is idempotent: seeding twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from deid.signing import generate_signing_key, load_private_key, private_key_b64, public_key_b64
from hub.registry import services
from hub.registry.hhs import HospitalCapacity, pick_spread
from hub.registry.models import AgentComponent, Hospital, Region, SiteAgent, StrokeCapability

DEFAULT_COUNTIES = ("Westchester", "Rockland", "Orange", "Putnam", "Dutchess", "Ulster")

# Approximate county centroids (degrees); hospitals are placed near them with a
# deterministic offset. Used only to make synthetic travel times plausible.
COUNTY_CENTROIDS: dict[str, tuple[float, float]] = {
    "New York": (40.776, -73.970),
    "Kings": (40.635, -73.950),
    "Queens": (40.706, -73.796),
    "Bronx": (40.848, -73.866),
    "Richmond": (40.583, -74.150),
    "Nassau": (40.733, -73.589),
    "Suffolk": (40.883, -72.801),
    "Westchester": (41.162, -73.757),
    "Rockland": (41.148, -74.025),
    "Putnam": (41.427, -73.750),
    "Orange": (41.402, -74.306),
    "Dutchess": (41.765, -73.743),
    "Ulster": (41.888, -74.259),
    "Sullivan": (41.716, -74.768),
    "Albany": (42.600, -73.974),
    "Erie": (42.762, -78.730),
    "Monroe": (43.146, -77.694),
    "Onondaga": (43.006, -76.197),
}
NY_CENTRE = (42.9, -75.5)
WARD_SIZE = 32  # medical-surgical beds per ward: typical nurse-staffed ward size


def _unit_fraction(*parts: str) -> float:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def position(capacity: HospitalCapacity) -> tuple[float, float]:
    lat, lon = COUNTY_CENTROIDS.get(capacity.county, NY_CENTRE)
    spread = 0.08 if capacity.county in COUNTY_CENTROIDS else 1.0
    return (
        round(lat + (_unit_fraction(capacity.hospital_pk, "lat") - 0.5) * 2 * spread, 5),
        round(lon + (_unit_fraction(capacity.hospital_pk, "lon") - 0.5) * 2 * spread, 5),
    )


def travel(a: tuple[float, float], b: tuple[float, float]) -> tuple[int, float]:
    """(minutes, km) by ambulance: great-circle distance times a road factor of 1.3 at an
    average 45 km/h, plus 6 minutes to load and hand over."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    km = 2 * 6371 * math.asin(math.sqrt(h)) * 1.3
    return 6 + round(km / 45 * 60), round(km, 1)


@dataclass(frozen=True)
class UnitPlan:
    code: str
    name: str
    unit_type: str
    staffed: int
    surge: int


@dataclass(frozen=True)
class HospitalPlan:
    capacity: HospitalCapacity
    site_code: str
    name: str
    units: tuple[UnitPlan, ...]
    capabilities: dict[str, object]


def plan_hospital(capacity: HospitalCapacity, rank: int, total: int) -> HospitalPlan:
    inpatient = capacity.adult_inpatient_beds or 0
    icu = capacity.adult_icu_beds or 0
    medsurg = max(inpatient - icu, 0)
    units = [UnitPlan("ICU", "Adult ICU", "adult_icu", icu, max(1, math.ceil(icu * 0.1)))]
    wards = max(1, math.ceil(medsurg / WARD_SIZE))
    for n in range(wards):
        beds = medsurg // wards + (1 if n < medsurg % wards else 0)
        units.append(
            UnitPlan(f"MS{n + 1:02d}", f"Medical-surgical {n + 1}", "medical_surgical", beds, 2)
        )
    # Synthetic: roughly one ED place per eight inpatient beds, at least eight.
    units.append(UnitPlan("ED", "Emergency department", "emergency", max(8, inpatient // 8), 4))
    biggest = rank == 0
    capabilities: dict[str, object] = {
        "trauma_level": 1 if biggest else (2 if inpatient >= 300 else None),
        "stroke": StrokeCapability.COMPREHENSIVE
        if biggest
        else (StrokeCapability.PRIMARY if inpatient >= 150 else StrokeCapability.ACUTE_READY),
        "stemi_pci": inpatient >= 150,
        "paediatrics": inpatient >= 250,
        "burns": biggest and total > 1,
        "psychiatry": inpatient >= 200,
        "maternity": inpatient >= 100,
    }
    return HospitalPlan(
        capacity=capacity,
        site_code=f"NY{capacity.hospital_pk}",
        name=f"{capacity.county} Hospital {capacity.hospital_pk} (synthetic name)",
        units=tuple(units),
        capabilities=capabilities,
    )


@dataclass
class SeedResult:
    region: Region
    hospitals: list[Hospital] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    agent_files: list[Path] = field(default_factory=list)


def choose(
    capacities: dict[str, HospitalCapacity], *, counties: tuple[str, ...], n: int
) -> tuple[list[HospitalCapacity], dict[str, str]]:
    wanted = {c.lower() for c in counties}
    skipped: dict[str, str] = {}
    candidates = []
    for cap in capacities.values():
        if wanted and cap.county.lower() not in wanted:
            continue
        if not cap.complete:
            inpatient = cap.figures.get("total_adult_inpatient_avg")
            icu = cap.figures.get("total_staffed_adult_icu_avg")
            if inpatient is None or icu is None:
                skipped[cap.hospital_pk] = "adult inpatient or ICU beds never reported"
            elif inpatient.suppressed or icu.suppressed:
                skipped[cap.hospital_pk] = "latest bed count suppressed (-999999)"
            else:
                skipped[cap.hospital_pk] = "too few ICU beds for a demo hospital"
            continue
        candidates.append(cap)
    return pick_spread(candidates, n), skipped


@transaction.atomic
def region_seed(
    *,
    capacities: dict[str, HospitalCapacity],
    region_code: str,
    region_name: str,
    counties: tuple[str, ...] = DEFAULT_COUNTIES,
    hospitals: int = 6,
) -> SeedResult:
    """Create or update a region of ``hospitals`` real-sized hospitals, their units and the
    travel times between every pair."""
    region = services.region_ensure(code=region_code, name=region_name)
    chosen, skipped = choose(capacities, counties=counties, n=hospitals)
    ranked = sorted(chosen, key=lambda c: -(c.adult_inpatient_beds or 0))
    result = SeedResult(region=region, skipped=skipped)
    places: dict[int, tuple[float, float]] = {}
    for rank, cap in enumerate(ranked):
        plan = plan_hospital(cap, rank, len(ranked))
        lat, lon = position(cap)
        hospital = services.hospital_upsert(
            region=region,
            site_code=plan.site_code,
            name=plan.name,
            county=cap.county,
            county_fips=cap.fips[:5],
            state="NY",
            latitude=lat,
            longitude=lon,
            cms_ccn=cap.hospital_pk,
            **plan.capabilities,
        )
        for unit in plan.units:
            services.unit_upsert(
                hospital=hospital,
                code=unit.code,
                name=unit.name,
                unit_type=unit.unit_type,
                licensed_beds=unit.staffed,  # HHS reports staffed beds only
                staffed_beds=unit.staffed,
                surge_beds=unit.surge,
            )
        places[hospital.pk] = (lat, lon)
        result.hospitals.append(hospital)
    for a in result.hospitals:
        for b in result.hospitals:
            if a.pk != b.pk:
                minutes, km = travel(places[a.pk], places[b.pk])
                services.travel_time_set(origin=a, destination=b, minutes=minutes, distance_km=km)
    return result


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string of printable text is a TOML basic string


def agent_toml(hospital: Hospital, *, index: int, hub_url: str, data_root: str) -> str:
    """A site agent configuration (site_agent/config.py format) for a seeded hospital."""
    lines = [
        "# Generated by `manage.py seed_region --agent-dir`: a demo site agent for a seeded",
        "# hospital. Bed counts are real (HHS); everything else is synthetic.",
        "[site]",
        f"code = {_toml_str(hospital.site_code)}",
        f"name = {_toml_str(hospital.name)}",
        'timezone = "America/New_York"',
        "",
        "[agent]",
        f"data_dir = {_toml_str(f'{data_root}/{hospital.site_code}')}",
        "snapshot_interval_seconds = 30.0",
        "heartbeat_interval_seconds = 15.0",
        "stale_after_minutes = 5.0",
        'expected_feeds = ["adt-main"]',
        "",
        "[mllp]",
        f"port = {12575 + index}",
        "",
        "[fhir]",
        "enabled = false",
        f"port = {18081 + index}",
        "",
        "# The hub's site API: the agent polls its directives with this credential (a file",
        "# next to this one); the demo script also reads it.",
        "[hub]",
        f"url = {_toml_str(hub_url)}",
        f"credential_file = {_toml_str(f'{hospital.site_code}.credential')}",
        f"signing_key_file = {_toml_str(f'{hospital.site_code}.signing_key')}",
    ]
    for unit in hospital.units.filter(active=True).order_by("code"):
        lines += [
            "",
            "[[units]]",
            f"code = {_toml_str(unit.code)}",
            f"type = {_toml_str(unit.unit_type)}",
            f"name = {_toml_str(unit.name)}",
            f"licensed_beds = {unit.licensed_beds}",
            f"staffed_beds = {unit.staffed_beds}",
            f"surge_beds = {unit.surge_beds}",
            "beds_per_room = 2" if unit.unit_type != "emergency" else "beds_per_room = 1",
            f"room_prefix = {_toml_str(unit.code + '-')}",
        ]
    return "\n".join(lines) + "\n"


def agents_write(
    *, hospitals: list[Hospital], directory: Path, hub_url: str, data_root: str
) -> list[Path]:
    """For each hospital: a site agent TOML, the DE-ID worker's Ed25519 signing key (0600,
    created once and reused), and an enrolled SiteAgent holding its public key with its API
    credential (0600). Rerunning keeps keys and credentials that still match."""
    written: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    for index, hospital in enumerate(hospitals):
        key_path = directory / f"{hospital.site_code}.signing_key"
        cred_path = directory / f"{hospital.site_code}.credential"
        if key_path.exists():
            key = load_private_key(key_path.read_text(encoding="utf-8"))
        else:
            key = generate_signing_key()
            _write_secret(key_path, private_key_b64(key))
        public = public_key_b64(key)
        agent = SiteAgent.objects.filter(hospital=hospital, name="deid-worker").first()
        current = (
            agent is not None
            and agent.status == "enrolled"
            and agent.public_key == public
            and cred_path.exists()
        )
        if not current:
            if agent is not None and agent.status == "enrolled":
                services.agent_revoke(agent=agent)
            credential = services.agent_register(
                hospital=hospital,
                name="deid-worker",
                public_key=public,
                component=AgentComponent.DEID_WORKER,
            )
            _write_secret(cred_path, credential.credential)
        toml_path = directory / f"{hospital.site_code}.toml"
        toml_path.write_text(
            agent_toml(hospital, index=index, hub_url=hub_url, data_root=data_root),
            encoding="utf-8",
        )
        written += [toml_path, key_path, cred_path]
    return written
