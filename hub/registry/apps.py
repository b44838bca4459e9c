from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Regions, hospitals, units, travel times and the site agents that feed the hub.

    The label is ``registry`` because governance finds the scoping models by it
    (``GOVERNANCE_HOSPITAL_MODEL = "registry.Hospital"``)."""

    name = "hub.registry"
    label = "registry"
    verbose_name = "Hospital registry"

    def ready(self) -> None:
        from hub.registry import governance_bridge

        # Governance's erasure directives become site directives the agent fetches.
        governance_bridge.connect_signals()
