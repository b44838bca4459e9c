"""Region configuration: documented defaults, JSON round trip, partial overrides, refusals."""

from __future__ import annotations

import json

import pytest

from hub.coordination.config import Band, RegionConfig, SurgeParameter


def test_defaults_round_trip_through_json() -> None:
    config = RegionConfig()
    again = RegionConfig.from_json(config.to_json())
    assert again == config


def test_a_region_overrides_only_what_it_names() -> None:
    config = RegionConfig.from_dict(
        {
            "diversion": {"close_enter": 0.85, "bands": {"ed_occupancy": [0.75, 1.0]}},
            "surge": {"parameters": {"icu_occupancy": [0.75, 0.85, 0.95, 2.0]}},
            "alerts": {"escalation_minutes": [10, 30]},
        }
    )
    assert config.diversion.close_enter == 0.85
    assert config.diversion.close_exit == RegionConfig().diversion.close_exit
    assert config.diversion.bands["ed_occupancy"] == Band(0.75, 1.0)
    assert config.diversion.bands["ward_occupancy"] == Band(0.85, 1.0)  # default kept
    assert config.surge.parameters["icu_occupancy"] == SurgeParameter(0.75, 0.85, 0.95, 2.0)
    assert len(config.surge.parameters) == 8
    assert config.alerts.escalation_minutes == (10.0, 30.0)
    assert config.surge.checklists[4] == RegionConfig().surge.checklists[4]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"diversion": {"close_entr": 0.9}}, "unknown keys ['close_entr']"),
        ({"diversion": {"close_enter": "high"}}, "expected a number"),
        ({"diversion": {"close_enter": 0.55}}, "need advisory_exit"),
        ({"surge": {"parameters": {"ed_occupancy": [0.9, 0.8, 1.0]}}}, "must rise"),
        ({"surge": {"parameters": {"mood": [1, 2, 3]}}}, "unknown surge parameters"),
        ({"surge": {"score_bands": [50, 40, 70]}}, "bands must rise"),
        ({"alerts": {"thresholds": [["ed_occupancy", ">", 1.0]]}}, "op must be"),
        ({"alerts": {"thresholds": [["weather", ">=", 1.0]]}}, "unknown alert figure"),
        ({"diversion": {"stroke_min_level": "excellent"}}, "not a valid value"),
        ({"sharing": []}, "expected an object"),
        (
            {"diversion": {"destination_min_ed_free": 0}},
            "destination_min_ed_free must be at least 1",
        ),
    ],
)
def test_bad_values_are_refused_with_the_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RegionConfig.from_json(json.dumps(data))
