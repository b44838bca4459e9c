"""DRF building blocks that put a view under governance: one declared action, one filter.

    class CensusViewSet(GovernedViewSetMixin, viewsets.ReadOnlyModelViewSet):
        queryset = CensusSnapshot.objects.all()
        governance_action = "read_census"
        # or per viewset action / HTTP method:
        governance_actions = {"list": "read_census", "export": "export_census"}

The mixin restricts ``get_queryset`` with ``governance.access.restrict``, so another
hospital's object is a 404 (never its data), checks the action with ``GovernedPermission``,
and fills the request's audit event with the action, object ids, hospitals and row count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _MixinBase = GenericAPIView[Any]
else:
    _MixinBase = object

from governance.access import can, restrict

_READS = ("list", "retrieve", "get")
_METHOD_ACTIONS = {
    "get": _READS,
    "head": _READS,
    "options": _READS,
    "post": ("create",),
    "put": ("update",),
    "patch": ("partial_update",),
    "delete": ("destroy",),
}


def declared_action(view: Any, request: Request | None = None) -> str:
    """The governed action a view performs for this request (viewset action or method)."""
    actions: Mapping[str, str] = getattr(view, "governance_actions", None) or {}
    keys = [getattr(view, "action", None)]
    if request is not None and request.method:
        keys.append(request.method.lower())
    for key in keys:
        if key and key in actions:
            return actions[key]
    if request is not None and request.method and keys[0] in (None, "metadata"):
        # OPTIONS (DRF's metadata) and the browsable API check the forms they would show
        # with the method those would use, under the viewset action "metadata" (or none):
        # each method needs what its viewset action needs; describing needs reading.
        for key in _METHOD_ACTIONS.get(request.method.lower(), ()):
            if key in actions:
                return actions[key]
    action = getattr(view, "governance_action", None)
    if not action:
        raise ImproperlyConfigured(
            f"{type(view).__name__} declares no governance_action for {keys!r}"
        )
    return str(action)


def _audit(request: Request) -> Any:
    return getattr(request._request, "audit_context", None)


class GovernedPermission(BasePermission):
    """Allows the request when the user may perform the view's declared action at all;
    objects are checked again against the same rule (defence in depth behind ``restrict``)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        action = declared_action(view, request)
        context = _audit(request)
        if context is not None:
            context["action"] = action
        return can(request.user, action)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if not isinstance(obj, models.Model):
            return False
        return can(request.user, declared_action(view, request), obj)


class GovernedViewSetMixin(_MixinBase):
    """Mix into any DRF view or viewset (before the DRF base class)."""

    governance_action: str | None = None
    governance_actions: Mapping[str, str] = {}
    permission_classes = [GovernedPermission]  # noqa: RUF012 (DRF attribute)

    def get_governance_action(self) -> str:
        return declared_action(self, getattr(self, "request", None))

    def get_queryset(self) -> models.QuerySet[Any]:
        queryset = super().get_queryset()
        return restrict(queryset, self.request.user, self.get_governance_action())

    def get_object(self) -> Any:
        obj = super().get_object()
        context = _audit(self.request)
        if context is not None:
            context.add_objects([obj])
        return obj

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("many") and args:
            rows = args[0]
            if isinstance(rows, models.QuerySet):
                rows = list(rows)  # evaluated once; the serializer reuses the same list
            args = (rows, *args[1:])
            context = _audit(self.request)
            if context is not None:
                context.add_objects(r for r in rows if isinstance(r, models.Model))
        return super().get_serializer(*args, **kwargs)
