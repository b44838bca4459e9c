"""Reads behind the surge page: each visible hospital's OPEL level with the parameters behind
it (current value, the level it gives, the thresholds of levels 2–4), the region's level, and
the checklist of each level. Values come from the live census through the coordination
adapter (``inputs.region_states``) and the pure scoring (``surge.score``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from governance.access import restrict
from hub.coordination import inputs, surge
from hub.coordination import models as m
from hub.coordination.config import SURGE_PARAMETERS
from hub.coordination.services import region_config
from hub.registry.models import Hospital, Region

ACTION = "coordinate"


@dataclass(frozen=True)
class Parameter:
    label: str
    value: str
    level: int | None
    thresholds: tuple[str, str, str]
    weight: float


@dataclass(frozen=True)
class Subject:
    name: str
    level: int | None
    score: float | None
    since: Any
    parameters: list[Parameter]
    checklist: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class RegionSurgeView:
    region: Region
    overall: Subject | None
    hospitals: list[Subject]
    checklists: dict[int, tuple[str, ...]]


def _parameters(values: dict[str, float | None], cfg: Any) -> list[Parameter]:
    _, readings = surge.score(values, cfg)
    level_of = {r.name: r.level for r in readings}
    out = []
    for name in SURGE_PARAMETERS:
        p = cfg.parameters.get(name)
        if p is None:
            continue
        v = values.get(name)
        out.append(
            Parameter(
                label=surge.LABELS.get(name, name),
                value="not reported" if v is None else surge.format_value(name, v),
                level=level_of.get(name),
                thresholds=(
                    surge.format_value(name, p.level2),
                    surge.format_value(name, p.level3),
                    surge.format_value(name, p.level4),
                ),
                weight=p.weight,
            )
        )
    return out


def regions(user: Any) -> list[RegionSurgeView]:
    visible = restrict(Hospital.objects.filter(active=True), user, ACTION).select_related("region")
    by_region: dict[int, list[Hospital]] = {}
    for h in visible:
        by_region.setdefault(h.region_id, []).append(h)
    now = timezone.now()
    out = []
    for region in Region.objects.filter(pk__in=by_region).order_by("name"):
        cfg = region_config(region).surge
        ids = {h.pk for h in by_region[region.pk]}
        statuses = {
            s.hospital_id: s
            for s in restrict(m.HospitalStatus.objects.filter(hospital_id__in=ids), user, ACTION)
        }
        codes = {h.site_code: h for h in by_region[region.pk]}
        hospitals = []
        for state in inputs.region_states(region, now):
            shown = codes.get(state.code)
            if shown is None:
                continue
            st = statuses.get(shown.pk)
            level = st.surge_level if st is not None else None
            hospitals.append(
                Subject(
                    name=shown.name,
                    level=level,
                    score=st.surge_score if st is not None else None,
                    since=st.level_since if st is not None else None,
                    parameters=_parameters(surge.parameters(state), cfg),
                    checklist=cfg.checklists.get(level, ()) if level else (),
                    note="" if st is None or st.fresh else "feed stale: level held",
                )
            )
        hospitals.sort(key=lambda s: (-(s.level or 0), s.name))
        overall = None
        rs = restrict(m.RegionState.objects.filter(region=region), user, ACTION).first()
        if rs is not None:
            change = (
                restrict(
                    m.SurgeLevelChange.objects.filter(region=region, hospital__isnull=True),
                    user,
                    ACTION,
                )
                .order_by("-at")
                .first()
            )
            values = {r["name"]: r["value"] for r in (change.readings if change else [])}
            overall = Subject(
                name=region.name,
                level=rs.surge_level,
                score=rs.surge_score,
                since=rs.level_since,
                parameters=_parameters(values, cfg) if change else [],
                checklist=cfg.checklists.get(rs.surge_level, ()) if rs.surge_level else (),
                note="pooled parameters as of the region's last level change" if change else "",
            )
        out.append(RegionSurgeView(region, overall, hospitals, dict(cfg.checklists)))
    return out
