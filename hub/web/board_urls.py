"""Routes of the board pages (names are in the ``web`` namespace)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
