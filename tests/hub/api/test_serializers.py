"""History queries are validated by shallow copies of their declared fields
(``HistoryQuery.get_fields``): the same values and errors as DRF's deep copies, in any time
zone, and no serializer's binding is seen by another."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers

from hub.api import serializers as s


class DeepCensusHistoryQuery(s.CensusHistoryQuery):
    def get_fields(self) -> Any:
        return serializers.Serializer.get_fields(self)  # DRF's own: deep copies


class DeepFlowHistoryQuery(s.FlowHistoryQuery):
    def get_fields(self) -> Any:
        return serializers.Serializer.get_fields(self)


QUERIES: list[dict[str, Any]] = [
    {},
    {"site_code": "H001", "since": "2026-03-10T11:00:00Z", "until": "2026-03-10T12:00:00Z"},
    {"since": "2026-03-10T11:00:00.25+02:00", "until": "2026-03-10T12:00:00"},
    {"since": "2026-03-10", "unit_code": "  W1  ", "audience": "peer_hospitals"},
    {"unit_type": "adult_icu", "event_type": "admit", "limit": "5", "cursor": "x"},
    {"site_code": "", "unit_code": "", "since": "", "audience": ""},
    {"since": "yesterday"},
    {"since": "2026-03-10T12:00:00Z", "until": "2026-03-10T11:00:00Z"},
    {"unit_type": "spaceship", "event_type": "teleport", "audience": "everyone"},
    {"site_code": "bad code!", "unit_code": "x" * 33},
    {"site_code": ["H001", "H002"], "unit_type": ["burn", "emergency"]},  # the last one
]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
@pytest.mark.parametrize("query", QUERIES)
def test_validation_is_drfs(query: dict[str, Any], zone: str) -> None:
    data = QueryDict(urlencode(query, doseq=True))
    pairs = (
        (s.CensusHistoryQuery, DeepCensusHistoryQuery),
        (s.FlowHistoryQuery, DeepFlowHistoryQuery),
    )
    with timezone.override(zone):  # naive times are made aware in it
        for ours_class, drfs_class in pairs:
            ours, drfs = ours_class(data=data), drfs_class(data=data)
            assert ours.is_valid() == drfs.is_valid()
            assert ours.errors == drfs.errors
            if not drfs.errors:
                assert ours.validated_data == drfs.validated_data
                assert [getattr(v, "tzinfo", None) for v in ours.validated_data.values()] == [
                    getattr(v, "tzinfo", None) for v in drfs.validated_data.values()
                ]


def test_each_query_binds_its_own_fields() -> None:
    first, second = s.CensusHistoryQuery(data={}), s.CensusHistoryQuery(data={"since": "x"})
    assert not second.is_valid()
    assert first.is_valid()
    assert list(first.fields) == list(DeepCensusHistoryQuery().fields)
    for name, field in first.fields.items():
        assert field is not second.fields[name]
        assert field.parent is first
        assert second.fields[name].parent is second
        declared = s.CensusHistoryQuery._declared_fields[name]
        assert declared.parent is None  # the class's own fields are never bound
        assert declared.field_name is None
