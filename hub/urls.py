"""The hub's URLs: health probes, the admin, the API and its schema, the web app."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hub.health import views as health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/governance/", include("governance.api.urls")),
    path("api/v1/coordination/", include("hub.coordination.urls")),
    path("api/v1/benchmarks/", include("hub.benchmarks.urls")),
    path("api/v1/", include("hub.api.urls")),
    path("governance/", include("governance.web.urls")),
    path("", include("hub.web.urls")),
]
