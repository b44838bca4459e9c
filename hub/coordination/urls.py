"""/api/v1/coordination/ routes."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from hub.coordination import apis

router = SimpleRouter()
router.register("recommendations", apis.RecommendationViewSet)
router.register("decisions", apis.DecisionViewSet)
router.register("statuses", apis.StatusViewSet)
router.register("surge-changes", apis.SurgeChangeViewSet)
router.register("alerts", apis.AlertViewSet)
router.register("resource-requests", apis.ResourceRequestViewSet)
router.register("availability", apis.AvailabilityViewSet)

REGION = "regions/<slug:region_code>/"

app_name = "coordination"
urlpatterns = [
    path("", include(router.urls)),
    path(f"{REGION}state/", apis.RegionStateView.as_view(), name="region-state"),
    path(f"{REGION}evaluate/", apis.RegionEvaluateView.as_view(), name="region-evaluate"),
    path(f"{REGION}settings/", apis.RegionSettingsView.as_view(), name="region-settings"),
]
