"""The synthetic EHR feed: a restarted feed never repeats the previous run's control ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from site_agent.config import AgentConfig
from site_agent.synthetic import SyntheticHospital


def control_ids(config: AgentConfig, start: datetime) -> list[str]:
    sim = SyntheticHospital(config, start, seed=3, ed_visits_per_day=40)
    messages = [m for _, m in sim.next_messages(start + timedelta(hours=6))]
    return [m.split("\r", 1)[0].split("|")[9] for m in messages]


def test_each_run_has_its_own_control_ids(config: AgentConfig) -> None:
    start = datetime(2026, 11, 24, 7, tzinfo=UTC)
    first = control_ids(config, start)
    again = control_ids(config, start + timedelta(minutes=5))
    assert len(first) > 5
    assert len(set(first)) == len(first)
    assert not set(first) & set(again)
    assert max(len(c) for c in first + again) <= 20  # MSH-10 (ST, 20) in HL7 v2.5
