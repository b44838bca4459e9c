"""Seeding a region from the real HHS file: real-sized hospitals, idempotent, agents enrolled."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from hub.registry.models import Hospital, SiteAgent, TravelTime, Unit
from site_agent.config import load_config

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "hhs_ny_hospital_capacity_weekly.csv"


@pytest.mark.skipif(not DATA.exists(), reason="shared HHS data not present")
def test_seed_region_twice_gives_the_same_region_with_enrolled_agents(tmp_path: Path) -> None:
    call_command("seed_region", "--hospitals", "5", "--agent-dir", str(tmp_path))
    hospitals = list(Hospital.objects.filter(region__code="hudson-valley"))
    assert len(hospitals) == 5
    first_keys = {h.site_code: h.agents.get().public_key for h in hospitals}
    units = Unit.objects.filter(hospital__in=hospitals)
    beds = [
        sum(u.staffed_beds for u in units if u.hospital_id == h.pk and u.unit_type != "emergency")
        for h in hospitals
    ]
    # Real sizes, and a spread of them.
    assert max(beds) > 300
    assert min(beds) < 200
    assert {"adult_icu", "medical_surgical", "emergency"} <= set(
        units.values_list("unit_type", flat=True)
    )
    assert TravelTime.objects.filter(origin__in=hospitals).count() == 5 * 4

    call_command("seed_region", "--hospitals", "5", "--agent-dir", str(tmp_path))
    assert Hospital.objects.filter(region__code="hudson-valley").count() == 5
    assert {h.site_code: h.agents.get().public_key for h in hospitals} == first_keys
    assert SiteAgent.objects.filter(hospital__in=hospitals, revoked_at__isnull=True).count() == 5

    for hospital in hospitals:
        key_file = tmp_path / f"{hospital.site_code}.signing_key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        config = load_config(tmp_path / f"{hospital.site_code}.toml")
        assert config.site_code == hospital.site_code
        assert {u.code for u in config.units} == set(hospital.units.values_list("code", flat=True))


def test_a_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="HHS data not found"):
        call_command("seed_region", "--data", str(tmp_path / "nope.csv"))
