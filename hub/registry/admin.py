"""The registry in the Django admin: hospitals with their units, travel times, site agents
(enrolment tokens are issued and agents revoked by admin actions, through the services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.registry import services
from hub.registry.models import Directive, Hospital, Region, SiteAgent, TravelTime, Unit


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "timezone")
    search_fields = ("code", "name")


class UnitInline(admin.TabularInline):
    model = Unit
    extra = 0
    fields = ("code", "name", "unit_type", "licensed_beds", "staffed_beds", "surge_beds", "active")


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ("site_code", "name", "region", "county", "trauma_level", "stemi_pci", "active")
    list_filter = ("region", "active", "trauma_level", "stroke", "stemi_pci")
    search_fields = ("site_code", "name", "county", "cms_ccn")
    inlines = (UnitInline,)


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ("hospital", "code", "name", "unit_type", "staffed_beds", "active")
    list_filter = ("unit_type", "active", "hospital__region")
    search_fields = ("code", "name", "hospital__site_code")


@admin.register(TravelTime)
class TravelTimeAdmin(admin.ModelAdmin):
    list_display = ("origin", "destination", "minutes", "distance_km", "source")
    search_fields = ("origin__site_code", "destination__site_code")


@admin.register(SiteAgent)
class SiteAgentAdmin(admin.ModelAdmin):
    list_display = (
        "hospital",
        "name",
        "component",
        "status",
        "key_id",
        "last_heartbeat_at",
        "agent_version",
    )
    list_filter = ("component", "hospital__region")
    search_fields = ("name", "hospital__site_code", "key_id")
    # Keys, digests and enrolment state change only through the services (enrolment,
    # revocation), never by editing a field.
    readonly_fields = (
        "public_key",
        "key_id",
        "enrolment_expires_at",
        "enrolled_at",
        "revoked_at",
        "service_user",
        "agent_version",
        "last_heartbeat_at",
        "feed_status",
        "policy_version",
        "outbox_backlog",
    )
    exclude = ("enrolment_token_hash", "credential_hash")
    actions = ("issue_enrolment_token", "revoke")

    def save_model(self, request: HttpRequest, obj: SiteAgent, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        ticket = services.agent_enrolment_issue(
            hospital=obj.hospital, name=obj.name, component=obj.component
        )
        obj.pk = ticket.agent.pk
        self._show_token(request, ticket)

    def _show_token(self, request: HttpRequest, ticket: services.EnrolmentTicket) -> None:
        messages.warning(
            request,
            f"One-time enrolment token for {ticket.agent} (shown once, valid until "
            f"{ticket.expires_at:%Y-%m-%d %H:%M} UTC): {ticket.token}",
        )

    @admin.action(description="Issue a new one-time enrolment token")
    def issue_enrolment_token(self, request: HttpRequest, queryset: QuerySet[SiteAgent]) -> None:
        for agent in queryset:
            try:
                ticket = services.agent_enrolment_issue(
                    hospital=agent.hospital, name=agent.name, component=agent.component
                )
            except services.RegistryError as exc:
                messages.error(request, f"{agent}: {exc}")
                continue
            self._show_token(request, ticket)

    @admin.action(description="Revoke (credential and signing key)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[SiteAgent]) -> None:
        for agent in queryset:
            services.agent_revoke(agent=agent)
        messages.success(request, f"{queryset.count()} agent(s) revoked")


@admin.register(Directive)
class DirectiveAdmin(admin.ModelAdmin):
    list_display = ("hospital", "kind", "issued_at", "expires_at", "acknowledged_at")
    list_filter = ("kind",)
    readonly_fields = ("issued_at", "acknowledged_at", "acknowledged_by")
