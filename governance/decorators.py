"""Governance for plain Django views (pages, file exports): the same action and audit rules
as the API mixin.

    @governed("read_census")
    def census_page(request, hospital_id): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

from governance.access import can
from governance.actions import get_action

View = Callable[..., HttpResponse]


def governed(action: str, *, model: type[Model] | None = None) -> Callable[[View], View]:
    """Require login and permission for ``action``; name it in the request's audit event.

    The view still filters its data with ``restrict(qs, request.user, action)``. ``model``
    names what a detail URL's ``pk`` points at, so the permission matrix
    (``governance.testing``) requests it with a real object of each hospital.
    """
    get_action(action)  # unknown actions fail at import time, not at the first request

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            context = getattr(request, "audit_context", None)
            if context is not None:
                context["action"] = action
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not can(request.user, action):
                raise PermissionDenied(action)
            return view(request, *args, **kwargs)

        wrapper.governance_action = action  # type: ignore[attr-defined]
        if model is not None:
            wrapper.queryset = model._default_manager.all()  # type: ignore[attr-defined]
        return wrapper

    return decorator


class GovernedViewMixin:
    """For class-based pages: set ``governance_action``; dispatch checks it."""

    governance_action: str = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = getattr(request, "audit_context", None)
        if context is not None:
            context["action"] = self.governance_action
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can(request.user, self.governance_action):
            raise PermissionDenied(self.governance_action)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
