"""The benchmarks API (/api/v1/benchmarks/): KPIs per hospital and period, peer ranks, and
the CSV export. Reads are ``read_benchmarks`` (operators; executives for their hospitals)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from governance.access import restrict
from governance.api.governed import GovernedViewSetMixin
from hub.benchmarks import kpis, services
from hub.benchmarks import serializers as s
from hub.benchmarks.models import HospitalKpi, UnitLosKpi
from hub.registry.models import Hospital

READ = "read_benchmarks"
LOWER_IS_BETTER = {
    "los_median_minutes",
    "los_p90_minutes",
    "waits_over_12h",
    "boarding_median_minutes",
    "boarding_p90_minutes",
    "offload_p90_minutes",
    "cancelled_electives",
}
FILTERS = [
    OpenApiParameter("period", str, description="day, week or month"),
    OpenApiParameter("since", str, description="first period start (YYYY-MM-DD)"),
    OpenApiParameter("until", str, description="last period start, inclusive"),
    OpenApiParameter("hospital", str, description="site code"),
]


def _filtered(request: Request, qs: QuerySet[Any]) -> QuerySet[Any]:
    f = s.KpiFilter(data=request.query_params)
    f.is_valid(raise_exception=True)
    v = f.validated_data
    if v.get("period"):
        qs = qs.filter(period=v["period"])
    if v.get("since"):
        qs = qs.filter(period_start__gte=v["since"])
    if v.get("until"):
        qs = qs.filter(period_start__lte=v["until"])
    if v.get("hospital"):
        qs = qs.filter(hospital__site_code=v["hospital"])
    return qs


class KpiViewSet(
    GovernedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[HospitalKpi],
):
    """KPIs per hospital and period; ``export`` gives the same rows as CSV and ``peers``
    ranks one metric within each peer group (size and capabilities)."""

    queryset = HospitalKpi.objects.select_related("hospital")
    serializer_class = s.KpiSerializer
    governance_actions = {  # noqa: RUF012 (a read-only mapping)
        "list": READ,
        "retrieve": READ,
        "export": READ,
        "peers": READ,
        "refresh": "coordinate",
    }

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        if self.action in {"list", "export"}:
            qs = _filtered(self.request, qs)
        return qs.order_by("-period_start", "hospital__site_code")

    @extend_schema(parameters=FILTERS, responses={(200, "text/csv"): str})
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> HttpResponse:
        rows = list(self.get_queryset())
        frame = pd.DataFrame(
            [{"hospital": r.hospital.site_code, **s.KpiSerializer(r).data} for r in rows],
            columns=["hospital", *[c for c in s.KpiSerializer.Meta.fields if c != "hospital"]],
        ).drop(columns=["id", "computed_at"])
        context = getattr(request._request, "audit_context", None)
        if context is not None:
            context.add_objects(rows)
        response = HttpResponse(kpis.to_csv(frame), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="benchmarks.csv"'
        return response

    @extend_schema(parameters=[OpenApiParameter("metric", str), *FILTERS[:1]])
    @action(detail=False, methods=["get"])
    def peers(self, request: Request) -> Response:
        p = s.PeerInput(data=request.query_params)
        p.is_valid(raise_exception=True)
        v = p.validated_data
        qs = self.get_queryset().filter(period=v["period"])
        if v.get("period_start"):
            qs = qs.filter(period_start=v["period_start"])
        metric = v["metric"]
        rows = [
            {
                "hospital": r.hospital.site_code,
                "period": pd.Timestamp(r.period_start),
                "peer_group": r.peer_group,
                metric: getattr(r, metric),
                "suppressed": r.suppressed,
            }
            for r in qs
        ]
        if not rows:
            return Response([])
        ranked = kpis.rank_within_peers(
            pd.DataFrame(rows), metric, higher_is_better=metric not in LOWER_IS_BETTER
        )
        ranked["period"] = ranked["period"].dt.strftime("%Y-%m-%d")
        out = [
            {str(k): (None if pd.isna(v) else v) for k, v in row.items()}
            for row in ranked.to_dict("records")
        ]
        return Response(out)

    @extend_schema(request=s.RefreshInput, responses={200: dict})
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        data = s.RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        hospitals = restrict(Hospital.objects.filter(active=True), request.user, "coordinate")
        written = services.kpis_refresh(
            hospitals=hospitals, period=v["period"], since=v["since"], until=v["until"]
        )
        return Response({"rows": written})


class UnitLosViewSet(GovernedViewSetMixin, viewsets.ReadOnlyModelViewSet[UnitLosKpi]):
    """Inpatient length of stay by unit type and period."""

    queryset = UnitLosKpi.objects.select_related("hospital")
    serializer_class = s.UnitLosSerializer
    governance_action = READ

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        if self.action == "list":
            qs = _filtered(self.request, qs)
        return qs
