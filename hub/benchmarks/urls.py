"""/api/v1/benchmarks/ routes."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from hub.benchmarks import apis

router = SimpleRouter()
router.register("kpis", apis.KpiViewSet)
router.register("unit-los", apis.UnitLosViewSet)

app_name = "benchmarks"
urlpatterns = [path("", include(router.urls))]
