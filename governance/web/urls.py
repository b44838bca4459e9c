"""/governance/ — the governance board's screens (namespace ``govweb``)."""

from django.urls import URLPattern

app_name = "govweb"
urlpatterns: list[URLPattern] = []
