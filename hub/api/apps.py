from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The hub's REST API (/api/v1/): site agents and the regional operations center."""

    name = "hub.api"
    label = "hub_api"
    verbose_name = "Hub API"

    def ready(self) -> None:
        from hub.api import governed

        governed.register_actions()

        from django.db.models.signals import post_delete, post_save

        from hub.api.authentication import site_agent_changed
        from hub.registry.models import SiteAgent

        post_save.connect(site_agent_changed, sender=SiteAgent, dispatch_uid="api-agent-save")
        post_delete.connect(site_agent_changed, sender=SiteAgent, dispatch_uid="api-agent-del")

        from hub.api import state_signals

        state_signals.connect()
