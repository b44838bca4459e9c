from django.apps import AppConfig


class CensusConfig(AppConfig):
    """De-identified census and flow records from the sites: ingestion, storage, live state."""

    name = "hub.census"
    label = "census"
    verbose_name = "Regional census"

    def ready(self) -> None:
        from hub.census import erasure

        erasure.register()
