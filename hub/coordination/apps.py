from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    """Regional coordination: diversion, surge levels, resource sharing, alerts."""

    name = "hub.coordination"
    label = "coordination"
    verbose_name = "Regional coordination"

    def ready(self) -> None:
        from hub.coordination import governed

        governed.register_actions()
