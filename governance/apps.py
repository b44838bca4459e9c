"""Governance: roles and object permissions, sharing policies, retention, erasure, audit."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance import actions, checks  # noqa: F401  (registers system checks)

        actions.register_defaults()

        from governance import versions

        versions.connect_signals()  # access changes invalidate the per-process memos
