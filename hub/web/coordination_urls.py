"""Routes of the coordination pages (names are in the ``web`` namespace)."""

from django.urls import URLPattern, path

from hub.web import alerts, benchmarks, diversion, sharing, surge, whatif

urlpatterns: list[URLPattern] = [
    path("diversion/", diversion.diversion, name="diversion"),
    path("diversion/<int:pk>/accept/", diversion.diversion_accept, name="diversion_accept"),
    path("diversion/<int:pk>/override/", diversion.diversion_override, name="diversion_override"),
    path("surge/", surge.surge, name="surge"),
    path("sharing/", sharing.sharing, name="sharing"),
    path("sharing/requests/", sharing.sharing_request_create, name="sharing_request_create"),
    path(
        "sharing/availability/",
        sharing.sharing_availability_declare,
        name="sharing_availability_declare",
    ),
    path("sharing/requests/<int:pk>/<slug:step>/", sharing.sharing_step, name="sharing_step"),
    path("benchmarks/", benchmarks.benchmarks, name="benchmarks"),
    path("benchmarks/export.csv", benchmarks.benchmarks_export, name="benchmarks_export"),
    path("what-if/", whatif.whatif, name="whatif"),
    path("what-if/runs/", whatif.whatif_run, name="whatif_run"),
    path("what-if/runs/<int:pk>/", whatif.whatif_detail, name="whatif_detail"),
    path("what-if/runs/<int:pk>/status/", whatif.whatif_status, name="whatif_status"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_acknowledge, name="alert_acknowledge"),
]
