from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "hub.health"
    label = "health"
    verbose_name = "Health"
