"""A page of census history answered as JSON straight from PostgreSQL's rows.

``GET /api/v1/history/census/`` is a tenth of the API's requests and was a third of its CPU:
compiling the ORM's ``.values()`` query for every request, Django's per-value conversions of
100 rows of 30 columns, then building each row's dict. Here the statement is written once,
PostgreSQL writes every value as the answer has it (the event id as text, the times as DRF's
ISO 8601 in UTC), and a row's dict is the row zipped with the serializer's field names.

Only where the answer is plain JSON in UTC (``CensusHistoryView.list``); every other answer
goes the ORM's way. What stays DRF's or governance's own, so the answer cannot drift:

* the query's validation (``CensusHistoryQuery``) and the caller's scope: ``restrict``'s own
  filter on the snapshot table, compiled, when it has one (operators' has none);
* the pagination: DRF's ``CursorPagination`` pages ``CensusHistoryPage``, which answers the
  little it asks of a queryset (an ordering, the cursor's position, a slice) with one
  statement, so the page, the cursors and the links are DRF's by construction.

tests/hub/api/test_history_json.py holds the bytes, the links and the audit event equal to
the ORM's answer for every query parameter, cursor and edge of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import QuerySet

from hub.api import serializers as s
from hub.api.live_output import answers_in_utc, iso_utc_sql, suppressed_names
from hub.census.models import CensusSnapshot
from hub.census.selectors import FIGURES, census_history_conditions

__all__ = [
    "ROW_KEYS",
    "CensusHistoryPage",
    "HistoryRow",
    "history_page",
    "page_data",
    "page_event_ids",
    "page_hospital_ids",
]

_TABLE = CensusSnapshot._meta.db_table
_OBSERVED_AT = CensusSnapshot._meta.get_field("observed_at")

# Each field of the answer as PostgreSQL writes it: the values ``census_history_rows`` would
# make, so that no value needs converting in Python but ``suppressed`` (jsonb, re-encoded).
_COLUMNS: dict[str, str] = {
    **{figure: figure for figure in FIGURES},
    "event_id": "event_id::text",
    "observed_at": iso_utc_sql("observed_at"),
    "as_of": "as_of",
    "site_code": "site_code",
    "unit_code": "unit_code",
    "unit_type": "unit_type",
    "audience": "audience",
    "policy_version": "policy_version",
    "source": "source",
    "stale": "stale",
    "suppressed": "suppressed::text",
    "produced_at": iso_utc_sql("produced_at"),
    "received_at": iso_utc_sql("received_at"),
    "key_id": "key_id",
    "via": "via",
}

# The answer's keys in the serializer's order (a missing column fails here, at import).
ROW_KEYS: tuple[str, ...] = tuple(s.CensusSnapshotOutput().fields)
_SELECT = ", ".join([*(_COLUMNS[key] for key in ROW_KEYS), "hospital_id"])
_EVENT_ID = ROW_KEYS.index("event_id")
_OBSERVED = ROW_KEYS.index("observed_at")
_SUPPRESSED = ROW_KEYS.index("suppressed")
_HOSPITAL_ID = len(ROW_KEYS)  # after the answer's columns: for the audit event

# DRF's cursor ordering (``HistoryPagination.ordering``) and its reverse, as SQL: on the
# table's columns, named with the table, for an ORDER BY name is first an output column's,
# and the event id is selected as text (ordering by it would sort text, not uuids).
_ORDER_BY: dict[tuple[str, ...], str] = {
    ("-observed_at", "-event_id"): f"{_TABLE}.observed_at DESC, {_TABLE}.event_id DESC",
    ("observed_at", "event_id"): f"{_TABLE}.observed_at ASC, {_TABLE}.event_id ASC",
}
_POSITION_OPERATORS = {"observed_at__lt": "<", "observed_at__gt": ">"}


class HistoryRow(tuple[Any, ...]):
    """One selected row: the answer's values in ``ROW_KEYS`` order, then the hospital id."""

    __slots__ = ()

    @property
    def observed_at(self) -> str:
        """The row's cursor position as DRF writes it, ``str()`` of the datetime the ORM
        reads in UTC (``2026-01-02 03:04:05.000006+00:00``), from the answer's ISO text:
        reading every row's time as a datetime was a tenth of the page's CPU, and DRF looks
        at one or two rows' positions."""
        iso: str = self[_OBSERVED]
        return f"{iso[:10]} {iso[11:-1]}+00:00"


@dataclass(frozen=True, slots=True)
class CensusHistoryPage:
    """What DRF's ``CursorPagination.paginate_queryset`` asks of a queryset — ``order_by``
    with its ordering or the reverse, ``filter`` on the cursor's position, a slice — answered
    by one SQL statement on the snapshot table."""

    using: str
    conditions: tuple[str, ...]
    params: tuple[Any, ...]
    ordering: str = _ORDER_BY[("-observed_at", "-event_id")]

    def order_by(self, *ordering: str) -> CensusHistoryPage:
        return replace(self, ordering=_ORDER_BY[ordering])

    def filter(self, **position: Any) -> CensusHistoryPage:
        ((lookup, value),) = position.items()
        operator = _POSITION_OPERATORS[lookup]
        # The cursor's position as the ORM's lookup prepares it: the same parsing, the same
        # ValidationError (a 400) for a forged one, the same aware datetime.
        prepared = _OBSERVED_AT.get_prep_value(value)
        prepared = _OBSERVED_AT.get_db_prep_value(prepared, connections[self.using], prepared=True)
        return replace(
            self,
            conditions=(*self.conditions, f"observed_at {operator} %s"),
            params=(*self.params, prepared),
        )

    def __getitem__(self, bounds: slice) -> list[HistoryRow]:
        if bounds.step is not None:
            raise TypeError("a page of history is read as a plain slice")
        start = int(bounds.start or 0)
        limit = "" if bounds.stop is None else f" LIMIT {int(bounds.stop) - start}"
        offset = f" OFFSET {start}" if start else ""
        where = f" WHERE {' AND '.join(self.conditions)}" if self.conditions else ""
        # S608: the conditions are this module's and ``census_history_conditions``' constants
        # or the ORM's compiled scope filter, all with %s parameters; the bounds are ints.
        sql = (
            f"SELECT {_SELECT} FROM {_TABLE}{where}"  # noqa: S608  # nosec B608
            f" ORDER BY {self.ordering}{limit}{offset}"
        )
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, self.params)
            return [HistoryRow(row) for row in cursor.fetchall()]


def _scope_conditions(
    restricted: QuerySet[CensusSnapshot],
) -> tuple[list[str], list[Any]] | None:
    """``restrict``'s filter of the snapshot table, compiled by the ORM, and its parameters
    (nothing for a region-wide scope); None when it matches no row or needs a join: the ORM
    answers those."""
    query = restricted.query
    if query.is_empty():
        return None
    # The ORM keeps the aliases of the joins it trimmed (a foreign key's own column is
    # compared, unit_id, not registry_unit.id) with no reference left: any other one is a
    # join this statement does not make.
    joined = [a for a, refs in query.alias_refcount.items() if refs and a != _TABLE]
    if joined or (query.alias_map and query.base_table != _TABLE):
        return None
    if not query.where:
        return [], []
    try:
        sql, params = query.get_compiler(using=restricted.db).compile(query.where)
    except EmptyResultSet:
        return None
    except FullResultSet:
        return [], []
    return [f"({sql})"], list(params)


def history_page(
    restricted: QuerySet[CensusSnapshot], query: dict[str, Any]
) -> CensusHistoryPage | None:
    """The history the validated ``query`` asks for within the caller's ``restricted``
    snapshots, to be paged by DRF; None when the answer is not in UTC or the scope's filter
    is not a plain one on this table (the ORM answers those)."""
    if not answers_in_utc() or connections[restricted.db].timezone_name != "UTC":
        return None
    scope = _scope_conditions(restricted)
    if scope is None:
        return None
    scope_sql, scope_params = scope
    conditions, params = census_history_conditions(**query)
    return CensusHistoryPage(restricted.db, (*scope_sql, *conditions), (*scope_params, *params))


def page_event_ids(page: Sequence[HistoryRow]) -> list[str]:
    """The page's event ids, as text (the audit event's object ids)."""
    return [row[_EVENT_ID] for row in page]


def page_hospital_ids(page: Sequence[HistoryRow]) -> list[int]:
    """The hospital of each of the page's rows (the audit event's hospitals)."""
    return [row[_HOSPITAL_ID] for row in page]


def page_data(page: Sequence[HistoryRow]) -> list[dict[str, Any]]:
    """``census_history_rows`` of the page: each row zipped with the answer's keys."""
    out = []
    for row in page:
        data = dict(zip(ROW_KEYS, row, strict=False))  # the hospital id is not answered
        data["suppressed"] = suppressed_names(row[_SUPPRESSED])
        out.append(data)
    return out
