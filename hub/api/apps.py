from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The hub's REST API (/api/v1/): site agents and the regional operations center."""

    name = "hub.api"
    label = "hub_api"
    verbose_name = "Hub API"

    def ready(self) -> None:
        from hub.api import governed

        governed.register_actions()
