"""Reads behind the resource-sharing page: open requests with their offers, suggestions and
the workflow steps their state allows (``matching.TRANSITIONS``), recent closed ones, and
declared availability. Every queryset goes through ``governance.access.restrict``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from governance.access import restrict
from hub.coordination import matching
from hub.coordination import models as m
from hub.registry.models import Hospital

ACTION = "coordinate"
OPEN = (m.RequestStatus.REQUESTED, m.RequestStatus.OFFERED, m.RequestStatus.ACCEPTED)


@dataclass(frozen=True)
class RequestView:
    request: m.ResourceRequest
    offers: list[m.ResourceOffer]
    suggestions: list[dict[str, Any]]
    steps: frozenset[str]  # the statuses this request may move to now


def hospitals(user: Any) -> QuerySet[Hospital]:
    return restrict(Hospital.objects.filter(active=True), user, ACTION).order_by("name")


def requests(user: Any, *, open_only: bool) -> list[RequestView]:
    qs = restrict(m.ResourceRequest.objects.all(), user, ACTION).select_related("requester")
    qs = qs.prefetch_related("offers__donor")
    # Open requests all; of the closed ones the latest twenty.
    qs = qs.filter(status__in=OPEN) if open_only else qs.exclude(status__in=OPEN)[:20]
    names = dict(hospitals(user).values_list("site_code", "name"))
    out = []
    for r in qs:
        allowed = matching.TRANSITIONS[matching.RequestStatus(r.status)]
        out.append(
            RequestView(
                request=r,
                offers=list(r.offers.all()),
                suggestions=[
                    {**s, "name": names.get(str(s.get("hospital")), "another hospital")}
                    for s in r.suggestions
                    if str(s.get("hospital")) in names
                ],
                steps=frozenset(s.value for s in allowed),
            )
        )
    return out


def request(user: Any, pk: int) -> m.ResourceRequest | None:
    return (
        restrict(m.ResourceRequest.objects.all(), user, ACTION)
        .select_related("requester", "region")
        .filter(pk=pk)
        .first()
    )


def availability(user: Any) -> QuerySet[m.ResourceAvailability]:
    return (
        restrict(m.ResourceAvailability.objects.all(), user, ACTION)
        .select_related("hospital")
        .order_by("-as_of", "-id")[:50]
    )
