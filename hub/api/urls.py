"""/api/v1/ routes."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from hub.api import views

router = SimpleRouter()
router.register("regions", views.RegionViewSet)
router.register("hospitals", views.HospitalViewSet)
router.register("units", views.UnitViewSet)
router.register("travel-times", views.TravelTimeViewSet)
router.register("site-agents", views.SiteAgentViewSet)
router.register("directives", views.DirectiveViewSet)

SITE = r"<str:site_code>"

app_name = "api"
# The router's directory routes last: a request that falls through an ``include`` costs a
# Resolver404 and its list of tried patterns, and the live, history and site routes carry
# most of the traffic. No route of the router shares a prefix with the ones above it.
urlpatterns = [
    path("live/", views.LiveRegionView.as_view(), name="live-region"),
    path("live/summary/", views.LiveSummaryView.as_view(), name="live-summary"),
    path(f"live/hospitals/{SITE}/", views.LiveHospitalView.as_view(), name="live-hospital"),
    path("history/census/", views.CensusHistoryView.as_view(), name="history-census"),
    path("history/flow/", views.FlowHistoryView.as_view(), name="history-flow"),
    path("exports/edxl-have/", views.EdxlHaveView.as_view(), name="export-edxl-have"),
    path(
        f"exports/edxl-have/{SITE}/",
        views.EdxlHaveHospitalView.as_view(),
        name="export-edxl-have-1",
    ),
    path("exports/measure-report/", views.MeasureReportView.as_view(), name="export-fhir"),
    path(
        f"exports/measure-report/{SITE}/",
        views.MeasureReportHospitalView.as_view(),
        name="export-fhir-1",
    ),
    path("site/enrol/", views.EnrolView.as_view(), name="site-enrol"),
    path("site/me/", views.SiteSelfView.as_view(), name="site-me"),
    path("site/heartbeat/", views.SiteHeartbeatView.as_view(), name="site-heartbeat"),
    path("site/policy/", views.SitePolicyView.as_view(), name="site-policy"),
    path("site/directives/", views.SiteDirectivesView.as_view(), name="site-directives"),
    path(
        "site/directives/<int:directive_id>/ack/",
        views.SiteDirectiveAckView.as_view(),
        name="site-directive-ack",
    ),
    path("site/batches/", views.SiteBatchView.as_view(), name="site-batches"),
    path("", include(router.urls)),
]
