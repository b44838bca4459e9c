"""The live-state responses built directly (hub/api/live_output.py) equal what the DRF
serializers, which stay the schema, would give for the same state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from hub.api import serializers as s
from hub.api.live_output import hospital_live_data, region_live_data
from hub.census import selectors
from hub.registry.models import Hospital, Unit
from tests.hub.api.test_live_api import ingest, report_all_units
from tests.hub.support import enrolled_site, heartbeat, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_region_and_hospital_data_equal_the_serializers(zone: str) -> None:
    fresh, key, _ = enrolled_site()
    report_all_units(
        fresh.site_code,
        key,
        at=datetime.now(UTC),
        ed_waiting=7,
        ed_boarding=6,
        offload_p50_minutes=12,
        offload_p90_minutes=75,
    )
    ingest(seal([heartbeat(fresh.site_code)], key, fresh.site_code))
    stale, stale_key, _ = enrolled_site()
    report_all_units(stale.site_code, stale_key, at=datetime.now(UTC) - timedelta(minutes=9))
    enrolled_site()  # one that never reported: no data

    region = selectors.live_region(hospitals=Hospital.objects.all(), units=Unit.objects.all())
    assert len(region.hospitals) == 3
    assert {h.status for h in region.hospitals} == {"ok", "stale", "no_data"}
    with timezone.override(zone):  # the time zone DRF renders datetimes in
        assert region_live_data(region) == s.RegionLiveOutput(region).data
        for hospital in region.hospitals:
            assert hospital_live_data(hospital) == s.HospitalLiveOutput(hospital).data
