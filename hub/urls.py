"""The hub's URLs: health probes, the admin, the API and its schema, the web app."""

from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from hub.health import views as health
from hub.observability import views as observability

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets one inline <style> element; the exception is for this page only.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("web/favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("api/v1/governance/", include("governance.api.urls")),
    path("api/v1/coordination/", include("hub.coordination.urls")),
    path("api/v1/benchmarks/", include("hub.benchmarks.urls")),
    path("api/v1/", include("hub.api.urls")),
    path("governance/", include("governance.web.urls")),
    path("", include("hub.web.urls")),
]
