"""Every error a client can cause is a 4xx with a message.

DRF already answers its own exceptions; this handler adds the domain and database errors a
request can reach (a refused registry write, a Django model validation error, a unique
constraint hit by a race) so none of them becomes a 500. A database that cannot answer (a
statement timed out, the server restarting) is a 503 with ``Retry-After``
(``hub.database_unavailable``): not the client's error, but one to try again.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.transient import RETRY_AFTER_SECONDS, unavailable_message
from hub.database_unavailable import log_unavailable
from hub.registry.services import RegistryError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RegistryError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "conflicts with an existing record"}, status=status.HTTP_409_CONFLICT
        )
    if (message := unavailable_message(exc)) is not None:
        log_unavailable(context["request"], exc)
        return Response(
            {"detail": message},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)
