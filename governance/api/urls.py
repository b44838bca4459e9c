"""/api/v1/governance/ — included by hub/urls.py."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from governance.api import views

app_name = "governance"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("erasure-requests", views.ErasureRequestViewSet, basename="erasure-request")
router.register(
    "site/erasure-requests", views.SiteErasureRequestViewSet, basename="site-erasure-request"
)
router.register("retention-runs", views.RetentionRunViewSet, basename="retention-run")

urlpatterns = [
    path("audit/verify/", views.AuditVerifyView.as_view(), name="audit-verify"),
    path("", include(router.urls)),
]
