"""The permission matrix, generated from the URL configuration (used by tests only).

``endpoints()`` walks the root URLconf and yields every (route, HTTP method) with the view's
declared governed action. The matrix test (tests/governance/test_permission_matrix.py) then:

* fails for any endpoint that declares no action (unless its URL name is listed in
  ``GOVERNANCE_UNGOVERNED_URLS``) — so a new endpoint cannot ship ungoverned;
* requests every endpoint as every role (and anonymously), against an object of the user's
  own hospital and one of another hospital, and checks: denied roles get 401/403/404, never
  data; an object of another hospital is a 403/404 and its id does not appear; allowed roles
  get through (a 400 for an empty body or a 409 for the object's state still means the
  permission check passed); nothing answers 500.

Detail endpoints need an object: register a factory per model in a ``matrix_factories.py``
module under ``tests/`` (discovered automatically)::

    from governance.testing import register_matrix_factory

    @register_matrix_factory("census.CensusSnapshot")
    def snapshot(hospital, unit):        # unit: the ED unit, or the ward nurse's ward
        return CensusSnapshot.objects.create(hospital=hospital, unit=unit, ...)

URL kwargs other than the primary key are read from the object (``lookup_field`` or an
attribute of the same name), or from ``register_url_kwarg``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from governance import conf
from governance.actions import get_action
from governance.roles import REGION_WIDE, Role

__all__ = ["REGION_WIDE", "Endpoint", "endpoints", "expect_allowed", "public", "reaches"]

Factory = Callable[[Any, Any], models.Model]
_factories: dict[str, Factory] = {}
_kwarg_builders: dict[str, Callable[[models.Model], Any]] = {}
_tokens: dict[Role, Callable[[Any, Any], Any]] = {}


def register_matrix_token(role: Role, builder: Callable[[Any, Any], Any]) -> None:
    """For views that authenticate a role by something other than the user (the site API's
    agent credential): ``builder(user, hospital)`` returns what DRF puts in ``request.auth``."""
    _tokens[Role(role)] = builder


def token_for(role: Role | None, user: Any, hospital: Any) -> Any:
    builder = _tokens.get(role) if role is not None else None
    return builder(user, hospital) if builder is not None else None


def register_matrix_factory(model_label: str) -> Callable[[Factory], Factory]:
    """Register ``factory(hospital, unit) -> obj`` creating one object of that model."""

    def decorator(factory: Factory) -> Factory:
        _factories[model_label.lower()] = factory
        return factory

    return decorator


def register_url_kwarg(name: str, builder: Callable[[models.Model], Any]) -> None:
    _kwarg_builders[name] = builder


def factory_for(model: type[models.Model]) -> Factory | None:
    return _factories.get(model._meta.label_lower)


@dataclass(frozen=True)
class Endpoint:
    route: str
    name: str  # "namespace:name", or "" when unnamed
    method: str
    view_action: str  # viewset action, or the HTTP method for plain views
    governed_action: str | None
    view: Any
    kwargs: tuple[str, ...] = field(default_factory=tuple)
    namespace: str = ""

    @property
    def model(self) -> type[models.Model] | None:
        queryset = getattr(self.view, "queryset", None)
        return queryset.model if queryset is not None else None

    @property
    def detail(self) -> bool:
        return bool(self.kwargs)

    def __str__(self) -> str:
        return f"{self.method.upper()} /{self.route} ({self.name or 'unnamed'})"


def _walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[tuple[str, str, str, Any]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace or "") if x)
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or "")
            yield prefix + str(p.pattern), name, namespace, p


def _declared(view: Any, view_action: str, method: str) -> str | None:
    actions = getattr(view, "governance_actions", None) or {}
    return (
        actions.get(view_action) or actions.get(method) or getattr(view, "governance_action", None)
    )


def endpoints(urlconf: str | None = None) -> list[Endpoint]:
    out: list[Endpoint] = []
    for route, name, namespace, pattern in _walk(get_resolver(urlconf).url_patterns, "", ""):
        kwargs = tuple(sorted(pattern.pattern.regex.groupindex))
        if "format" in kwargs:  # DRF's ".json" suffix twins of routes already listed
            continue
        callback = pattern.callback
        actions = getattr(callback, "actions", None)  # DRF viewsets
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
        if actions:
            for method, view_action in actions.items():
                declared = _declared(view, view_action, method)
                out.append(
                    Endpoint(route, name, method, view_action, declared, view, kwargs, namespace)
                )
        elif isinstance(view, type) and hasattr(view, "http_method_names"):
            for method in getattr(view, "http_method_names", ()):
                if method in ("options", "head") or not hasattr(view, method):
                    continue
                declared = _declared(view, method, method)
                out.append(Endpoint(route, name, method, method, declared, view, kwargs, namespace))
        else:
            declared = getattr(callback, "governance_action", None)
            out.append(Endpoint(route, name, "get", "get", declared, callback, kwargs, namespace))
    return out


def ungoverned_allowed(endpoint: Endpoint) -> bool:
    allowed = list(getattr(settings, "GOVERNANCE_UNGOVERNED_URLS", []))
    for entry in allowed:
        if entry.endswith(":*"):
            ns = entry[:-2]
            if endpoint.namespace == ns or endpoint.namespace.startswith(ns + ":"):
                return True
        if endpoint.name == entry:
            return True
    return False


def undeclared(eps: list[Endpoint]) -> list[Endpoint]:
    return [e for e in eps if not e.governed_action and not ungoverned_allowed(e)]


def url_kwargs(endpoint: Endpoint, obj: models.Model) -> dict[str, Any]:
    values: dict[str, Any] = {}
    lookup_kwarg = getattr(endpoint.view, "lookup_url_kwarg", None) or getattr(
        endpoint.view, "lookup_field", "pk"
    )
    for name in endpoint.kwargs:
        if name in _kwarg_builders:
            values[name] = _kwarg_builders[name](obj)
        elif name == lookup_kwarg:
            values[name] = getattr(obj, getattr(endpoint.view, "lookup_field", "pk"))
        elif name == "pk":
            values[name] = obj.pk
        elif hasattr(obj, name):
            values[name] = getattr(obj, name)
        else:
            raise LookupError(
                f"{endpoint}: teach the matrix the kwarg {name!r} "
                "(governance.testing.register_url_kwarg)"
            )
    return values


def public(endpoint: Endpoint) -> bool:
    """A view authenticated by something other than a user (``governance_public = "why"``,
    e.g. a one-time enrolment token): the matrix only checks it never fails with a 5xx."""
    return bool(getattr(endpoint.view, "governance_public", False))


def reaches(role: Role, model: type[models.Model] | None) -> bool:
    """Can a user of ``role`` at the object's hospital/unit ever see rows of ``model``?
    Stated from the role definitions of issue 7, not from ``restrict``'s code."""
    if role in REGION_WIDE:
        return True
    if model is None:
        return False
    if model is conf.hospital_model():
        return True
    paths = getattr(model, "governance_scope", None) or {}
    if model is conf.unit_model():
        paths = {"hospital": "hospital", "unit": "pk"}
    if role in (Role.ED_STAFF, Role.WARD_NURSE):
        return "unit" in paths
    return "hospital" in paths


def expect_allowed(endpoint: Endpoint, role: Role | None, own: bool) -> bool:
    if role is None or endpoint.governed_action is None:
        return False
    spec = get_action(endpoint.governed_action)
    if role not in spec.roles:
        return False
    if not endpoint.detail:
        return True
    # A detail URL without a queryset model names a hospital (e.g. by site code).
    model = endpoint.model or conf.hospital_model()
    return reaches(role, model) and (own or role in REGION_WIDE)


DENIED = frozenset({401, 403, 404})
