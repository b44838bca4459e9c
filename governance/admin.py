"""Admin pages for the board: read-only where the data is evidence (audit, checkpoints,
retention reports, erasure outcomes); changes go through the services (API), never raw edits."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from governance.models import (
    AuditCheckpoint,
    AuditEvent,
    BoardQuorum,
    ErasureRequest,
    GovernedGroup,
    PolicyDecision,
    RetentionRun,
    SharingPolicy,
)
from governance.paging import CappedPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "occurred_at",
        "actor_label",
        "action",
        "path",
        "status_code",
        "row_count",
        "chain_seq",
    )
    search_fields = ("actor_label", "action", "request_id", "path")
    # Nothing here reads the whole log (tens of millions of rows a day at 500 requests/s;
    # governance/paging.py): no full count, the page count capped, and no action filter or
    # date hierarchy, whose DISTINCT and date aggregates scan every row.
    show_full_result_count = False
    paginator = CappedPaginator


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "chain_seq", "chain_hash", "key_id")


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "started_at", "as_of", "dry_run", "actor_label")


class DecisionInline(admin.TabularInline):
    model = PolicyDecision
    extra = 0
    can_delete = False
    readonly_fields = ("member_label", "decision", "comment", "decided_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SharingPolicy)
class SharingPolicyAdmin(ReadOnlyAdmin):
    list_display = ("site_code", "version", "status", "effective_at", "published_at")
    list_filter = ("status",)
    inlines = (DecisionInline,)


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "site_code", "origin", "status", "received_at", "due_at")
    list_filter = ("status", "origin")
    exclude = ("surrogate_id", "surrogate_digest", "reason")


@admin.register(BoardQuorum)
class BoardQuorumAdmin(admin.ModelAdmin):
    list_display = ("region_id", "quorum")


@admin.register(GovernedGroup)
class GovernedGroupAdmin(admin.ModelAdmin):
    list_display = ("group", "role")
    list_filter = ("role",)
