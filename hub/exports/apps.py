from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Standard exports of the live state: OASIS EDXL-HAVE and FHIR R5 MeasureReport."""

    name = "hub.exports"
    label = "exports"
    verbose_name = "Standard exports"
