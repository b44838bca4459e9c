"""A page of census history answered from PostgreSQL's rows (hub/api/history_json.py): the
same status, headers, bytes, pagination links and audit event as the ORM's answer — the way
every other negotiated format still goes — for every query parameter, cursor, caller's scope
and edge of the data (times with and without microseconds, withheld figures and units,
suppressed lists, escaped strings)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from deid.contracts import UnitType
from governance.access import grant_unit
from governance.models import AuditEvent
from governance.roles import Role
from hub.api import history_json, views
from hub.census.models import CensusSnapshot
from hub.registry.models import Hospital, Unit
from tests.hub.api.test_live_api import ingest
from tests.hub.fixtures import Client
from tests.hub.support import census, enrolled_site, seal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/history/census/"
# The audit event's fields a request decides (not its id, time or request id).
AUDITED = (
    "actor_id",
    "actor_label",
    "roles",
    "action",
    "target",
    "method",
    "path",
    "status_code",
    "source_ip",
    "hospital_ids",
    "object_ids",
    "row_count",
    "detail",
)
# Every character JSON escapes, a few it does not, and PostgreSQL's array and quoting syntax.
AWKWARD = 'q"uote back\\slash {a,b} NULL \u2028 \u2029 é ✓ 😀 \x01 \x1f \t \n \r / <>&\x7f'
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    audit: dict[str, Any] | None
    fast: bool  # answered by hub/api/history_json.py


@dataclass(frozen=True)
class History:
    hospital: Hospital
    other: Hospital
    since: str
    until: str


def _answer(
    monkeypatch: pytest.MonkeyPatch,
    client: APIClient,
    url: str,
    params: dict[str, Any] | None,
    *,
    fast: bool,
    **headers: Any,
) -> Answer:
    built: list[int] = []
    page_data = history_json.page_data

    def spy(page: Any) -> list[dict[str, Any]]:
        built.append(len(page))
        return page_data(page)

    with monkeypatch.context() as patch:
        patch.setattr(history_json, "page_data", spy)
        if not fast:  # the ORM's answer: what the view answered before history_json
            patch.setattr(views, "plain_json_accepted", lambda request: False)
        before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = client.get(url, params, **headers)
    event = AuditEvent.objects.filter(id__gt=before).order_by("-id").values(*AUDITED).first()
    return Answer(
        status=response.status_code,
        body=response.content,
        headers={k: v for k, v in response.headers.items() if k != "X-Request-ID"},
        audit=event,
        fast=bool(built),
    )


Same = Callable[..., Answer]


@pytest.fixture
def same(monkeypatch: pytest.MonkeyPatch) -> Same:
    """same(client, url, params, fast=True, **headers): the request answered both ways,
    asserted identical; the fast answer. ``fast``: whether history_json must answer it (None:
    either, for refusals)."""

    def check(
        client: APIClient,
        url: str = URL,
        params: dict[str, Any] | None = None,
        fast: bool | None = True,
        **headers: str,
    ) -> Answer:
        quick = _answer(monkeypatch, client, url, params, fast=True, **headers)
        orm = _answer(monkeypatch, client, url, params, fast=False, **headers)
        assert not orm.fast
        if fast is not None:
            assert quick.fast is fast, "history_json did not answer" if fast else "it did"
        assert quick.status == orm.status
        assert quick.body == orm.body
        assert quick.headers == orm.headers
        assert quick.audit == orm.audit
        return quick

    return check


def _snapshots(site: Hospital) -> Any:
    return CensusSnapshot.objects.filter(site_code=site.site_code).order_by(
        "-observed_at", "-event_id"
    )


@pytest.fixture
def history() -> History:
    """Twelve minutes of a hospital's three units (three snapshots at each minute: ties for
    the cursor), two of another's, and rows edited into every edge the answer has."""
    hospital, key, _ = enrolled_site()
    other, other_key, _ = enrolled_site()
    records = []
    for m in range(12):
        at = T0 - timedelta(minutes=m, seconds=20, microseconds=m * 1010)
        records += [
            census(hospital.site_code, "W1", at=at, staffed_beds=30, occupied_beds=20 + m),
            census(
                hospital.site_code,
                "ICU",
                at=at,
                unit_type=UnitType.ADULT_ICU,
                licensed_beds=14,
                surge_beds=2,
                blocked_beds=1,
            ),
            census(
                hospital.site_code,
                "ED",
                at=at,
                unit_type=UnitType.EMERGENCY,
                ed_waiting=m,
                ed_boarding=3,
                longest_boarding_minutes=240,
                offload_p90_minutes=75,
            ),
        ]
    ingest(seal(records, key, hospital.site_code))
    theirs = [census(other.site_code, at=T0 - timedelta(minutes=m)) for m in (1, 2)]
    ingest(seal(theirs, other_key, other.site_code))
    rows = list(_snapshots(hospital))
    assert len(rows) == 36

    def edit(i: int, **values: Any) -> None:
        CensusSnapshot.objects.filter(pk=rows[i].pk).update(**values)

    # Times: microseconds not zero, zero, and with leading zeros (".000100").
    edit(0, observed_at=T0.replace(microsecond=123456), produced_at=T0, stale=True)
    edit(1, produced_at=T0.replace(microsecond=100), received_at=T0.replace(microsecond=7))
    edit(2, suppressed=["ed_waiting", "offload_p90_minutes"], ed_waiting=None, stale=False)
    edit(4, forecast=[{"hours_ahead": 4, "occupied_beds": 31.5}], source=AWKWARD, as_of="")
    edit(5, unit_code="", unit_type="", unit=None, key_id=AWKWARD[:16])  # unit withheld
    edit(6, audience="peer_hospitals", suppressed=[AWKWARD, 7, 2.5, None, True])
    edit(7, observed_at=rows[8].observed_at)  # another tie
    edit(9, licensed_beds=2**31 - 1, occupied_beds=0, available_beds=-1)
    edit(11, as_of="2026-03-10T11:49Z", source="", policy_version=0)
    return History(
        hospital=hospital,
        other=other,
        since=(T0 - timedelta(minutes=9)).isoformat(),
        until=(T0 + timedelta(seconds=1)).isoformat(),
    )


def _walk(same: Same, client: APIClient, params: dict[str, Any]) -> list[Answer]:
    """Every page forward by ``next``, then back by ``previous`` from the last, each page
    asserted the same both ways."""
    pages = [same(client, URL, params)]
    while (link := _link(pages[-1], "next")) is not None:
        pages.append(same(client, link))
        assert len(pages) < 80
    back = pages[-1]
    while (link := _link(back, "previous")) is not None:
        back = same(client, link)
        pages.append(back)
        assert len(pages) < 160
    return pages


def _link(answer: Answer, which: str) -> str | None:
    assert answer.status == 200, answer.body
    link: str | None = json.loads(answer.body)[which]
    return link


def _cursor(query: dict[str, Any]) -> str:
    """A cursor as DRF encodes one (``CursorPagination.encode_cursor``)."""
    return base64.b64encode(urlencode(query).encode()).decode()


def test_every_page_forward_and_back_is_the_same(
    same: Same, client_for: Client, history: History
) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    for limit in (1, 4):
        pages = _walk(same, operator, {"site_code": history.hospital.site_code, "limit": limit})
        # Every snapshot of the site, each page's rows and the audit event of each.
        forward = [p for p in pages if p.audit and p.audit["row_count"]]
        assert len(pages) > 36 // limit
        assert {oid for p in forward for oid in p.audit["object_ids"]} == {  # type: ignore[index]
            str(s.event_id) for s in _snapshots(history.hospital)
        }
        assert {tuple(p.audit["hospital_ids"]) for p in forward} == {(history.hospital.pk,)}  # type: ignore[index]


def test_the_rows_carry_every_edge_of_the_data(
    same: Same, client_for: Client, history: History
) -> None:
    answer = same(
        client_for(Role.REGIONAL_OPERATOR), URL, {"site_code": history.hospital.site_code}
    )
    body = answer.body.decode()
    # The edges are in the compared bytes (so a difference in any of them would have failed).
    assert '"observed_at":"2026-03-10T12:00:00.123456Z"' in body
    assert '"produced_at":"2026-03-10T12:00:00Z"' in body
    assert '"produced_at":"2026-03-10T12:00:00.000100Z"' in body
    assert '"received_at":"2026-03-10T12:00:00.000007Z"' in body
    assert '"suppressed":["ed_waiting","offload_p90_minutes"]' in body
    assert '"suppressed":["q\\"uote back\\\\slash' in body
    assert '"7","2.5","None","True"]' in body
    assert '"stale":true' in body
    assert '"stale":false' in body
    assert '"stale":null' in body
    assert '"unit_code":"","unit_type":""' in body
    assert '"licensed_beds":2147483647' in body
    assert '"available_beds":-1' in body
    assert '"ed_waiting":null' in body
    assert '"policy_version":0' in body
    assert "\u2028" in body
    assert "\\u0001" in body
    assert "forecast" not in body
    assert answer.audit is not None
    assert answer.audit["row_count"] == 36


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": 5},
        {"site": True},
        {"site": True, "since": True},
        {"site": True, "until": True},
        {"site": True, "since": True, "until": True, "limit": 2},
        {"since": True, "until": True},
        {"site": True, "unit_code": "ICU"},
        {"unit_code": "W1", "limit": 3},
        {"site": True, "unit_type": "emergency"},
        {"unit_type": "adult_icu", "since": True},
        {"site": True, "audience": "peer_hospitals"},
        {"audience": "regional_operations", "limit": 7},
        {"site": True, "unit_code": "ED", "unit_type": "emergency", "since": True},
        {"site": "other"},
        {"site": True, "unit_code": "nowhere"},  # an empty page
        {"site": True, "since": "2026-03-10T11:55:00+02:00"},  # an empty page: in the future
        {"site": True, "since": "2026-03-10T11:51:39.989"},  # naive: the current time zone
        {"site": True, "until": "2026-03-10T11:52:39.98799Z", "limit": 1000},
        {"site": True, "limit": 5000},  # capped at max_page_size
        {"site": True, "limit": 0},  # the default page size
        {"site": True, "limit": "x"},
        {"site": True, "limit": -3},
        {"site": True, "format": "json"},
        {"site": True, "unknown": "ignored", "limit": 2},
        {"site_code": "", "unit_code": "", "limit": 3},  # blank: as if not given
        {"site": True, "since": "", "until": "", "audience": ""},
    ],
)
def test_every_query_is_the_same(
    same: Same, client_for: Client, history: History, query: dict[str, Any]
) -> None:
    params = dict(query)
    site = params.pop("site", None)
    if site is not None:
        params["site_code"] = (
            history.other.site_code if site == "other" else history.hospital.site_code
        )
    if params.get("since") is True:
        params["since"] = history.since
    if params.get("until") is True:
        params["until"] = history.until
    answer = same(client_for(Role.REGIONAL_OPERATOR), URL, params)
    assert answer.status == 200


def test_the_last_page_and_an_empty_one_are_the_same(
    same: Same, client_for: Client, history: History
) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    site = history.hospital.site_code
    last = same(operator, URL, {"site_code": site, "limit": 36})
    assert b'"next":null,"previous":null' in last.body
    page = same(operator, URL, {"site_code": site, "limit": 35})
    assert b'"next":null' not in page.body
    end = same(operator, _link(page, "next"))
    assert b'"next":null' in end.body
    assert end.audit
    assert end.audit["row_count"] == 1
    empty = same(operator, URL, {"site_code": site, "unit_code": "nowhere"})
    assert empty.body == b'{"next":null,"previous":null,"results":[]}'
    assert empty.audit
    assert empty.audit["row_count"] == 0
    assert empty.audit["object_ids"] == []


# A naive cursor position is made aware with Django's warning, the same both ways.
@pytest.mark.filterwarnings("ignore:DateTimeField CensusSnapshot.observed_at received a naive")
def test_forged_and_unusual_cursors_are_the_same(
    same: Same, client_for: Client, history: History
) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    site = history.hospital.site_code
    position = str(_snapshots(history.hospital)[6].observed_at)
    cursors: list[dict[str, Any]] = [
        {"p": position},
        {"o": 2, "p": position},
        {"r": 1, "p": position},
        {"o": 3, "r": 1, "p": position},
        {"o": 4},
        {"o": 4, "r": 1},
        {"o": 5000},  # capped at DRF's offset cutoff
        {"p": "2026-03-10 11:55:00"},  # naive: made aware in the current time zone
        {"p": "2026-03-10"},
        {"p": "2026-03-10T11:55:00.5+01:00"},
    ]
    for query in cursors:
        answer = same(operator, URL, {"site_code": site, "limit": 3, "cursor": _cursor(query)})
        assert answer.status == 200, query
    refused = [{"p": "garbage"}, {"o": "x"}, {"r": "x"}, {"p": "2026-13-45 99:00:00"}]
    for query in refused:
        answer = same(operator, URL, {"site_code": site, "cursor": _cursor(query)}, fast=None)
        assert answer.status in (400, 404), query
    # Not base64 at all: b64decode drops what is not in its alphabet, leaving no cursor.
    same(operator, URL, {"site_code": site, "limit": 3, "cursor": "%%%"})


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "2026-03-10T12:00:00Z", "until": "2026-03-10T11:00:00Z"},
        {"unit_type": "spaceship"},
        {"audience": "everyone"},
        {"site_code": "bad code!"},
        {"unit_code": "x" * 33},
        {"limit": 2, "since": "2026-03-10T11:00:00Z", "until": "2026-03-10T11:00:00Z"},
    ],
)
def test_refused_queries_are_the_same(
    same: Same, client_for: Client, history: History, query: dict[str, str]
) -> None:
    answer = same(client_for(Role.REGIONAL_OPERATOR), URL, query, fast=None)
    assert answer.status == 400


def _nurse_of(unit: Unit) -> APIClient:
    user = get_user_model().objects.create_user(username=f"nurse-{unit.pk}")
    grant_unit(user, unit, Role.WARD_NURSE)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("role", [Role.ED_STAFF, Role.WARD_NURSE, Role.EXECUTIVE, None])
def test_each_callers_scope_is_the_same(
    same: Same, client_for: Client, history: History, role: Role | None
) -> None:
    if role is Role.WARD_NURSE:
        client = _nurse_of(history.hospital.units.get(code="W1"))
    else:
        client = client_for(role, history.hospital)
    allowed = role in (Role.ED_STAFF, Role.WARD_NURSE)
    answer = same(client, URL, {"limit": 5}, fast=True if allowed else None)
    assert answer.status == (200 if allowed else 403)
    if allowed:  # their unit's snapshots only: restrict's filter, compiled
        unit = b'"unit_code":"ED"' if role is Role.ED_STAFF else b'"unit_code":"W1"'
        assert answer.body.count(unit) == 5
        _walk(same, client, {"limit": 4})


def test_other_formats_and_time_zones_are_the_orms(
    same: Same, client_for: Client, history: History
) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    site: dict[str, Any] = {"site_code": history.hospital.site_code, "limit": 3}
    same(operator, URL, site, fast=False, HTTP_ACCEPT="application/json; indent=2")
    with timezone.override("America/New_York"):  # answered in that time zone: the ORM's
        answer = same(operator, URL, site, fast=False)
    assert b'"observed_at":"2026-03-10T08:00:00.123456-04:00"' in answer.body
    html = operator.get(URL, site, HTTP_ACCEPT="text/html")
    assert html.status_code == 200
    assert b"<html" in html.content


def test_the_fast_path_sends_one_statement(
    client_for: Client,
    history: History,
    django_assert_num_queries: Any,
) -> None:
    operator = client_for(Role.REGIONAL_OPERATOR)
    site = {"site_code": history.hospital.site_code}
    operator.get(URL, site)  # the caller's memos
    with django_assert_num_queries(2) as queries:  # the page and the audit insert
        assert operator.get(URL, site).status_code == 200
    statement = queries.captured_queries[0]["sql"]
    assert statement.startswith("SELECT ")
    # Ordered by the event id's uuid, not by the text it is selected as (an ORDER BY name is
    # an output column's first): the same order only under the C collation.
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (VERBOSE) {statement}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Sort Key:" in plan
    assert "::text" not in "".join(s for s in plan.splitlines() if "Sort Key:" in s)


def test_row_positions_are_the_orms(history: History) -> None:
    restricted = CensusSnapshot.objects.all()
    page = history_json.history_page(restricted, {"site_code": history.hospital.site_code})
    assert page is not None
    rows = page.order_by("-observed_at", "-event_id")[0:36]
    expected = list(_snapshots(history.hospital))
    assert [r.observed_at for r in rows] == [str(s.observed_at) for s in expected]
    assert history_json.page_event_ids(rows) == [str(s.event_id) for s in expected]
    assert set(history_json.page_hospital_ids(rows)) == {history.hospital.pk}


def test_cursor_links_keep_the_query(same: Same, client_for: Client, history: History) -> None:
    answer = same(
        client_for(Role.REGIONAL_OPERATOR),
        URL,
        {"site_code": history.hospital.site_code, "since": history.since, "limit": 2},
    )
    link = _link(answer, "next")
    assert link is not None
    query = parse_qs(urlsplit(link).query)
    assert query["since"] == [history.since]
    assert query["limit"] == ["2"]
