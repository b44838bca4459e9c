"""JSON rendering with orjson: byte-for-byte DRF's compact JSON, several times faster.

The live board (50 KB for a small region) and a page of history (80 KB) spent a millisecond
or more in ``json.dumps`` per answer. Values orjson would write differently from DRF —
datetimes (DRF writes ``Z`` for UTC), dates, times, decimals, dataclasses, lazy strings and
subclasses of built-in types — are handed to DRF's own encoder; an indented answer
(``Accept: application/json; indent=2``) or anything orjson refuses goes to DRF's renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_NON_STR_KEYS
)
_encoder = JSONEncoder()


def render_json(data: Any) -> bytes:
    """``data`` as ``FastJSONRenderer`` writes it for a plain JSON answer (no indent)."""
    try:
        return orjson.dumps(data, default=_encoder.default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        rendered: bytes = JSONRenderer().render(data)
        return rendered


def plain_json_accepted(request: Any) -> bool:
    """The request's negotiated answer is plain JSON (``render_json``): not the browsable
    API, not an indented answer. A view may then answer bytes made by ``render_json``."""
    renderer = getattr(request, "accepted_renderer", None)
    if type(renderer) is not FastJSONRenderer:
        return False
    return renderer.get_indent(getattr(request, "accepted_media_type", None) or "", {}) is None


@dataclass(frozen=True, slots=True)
class SharedJSON:
    """An answer shared between requests (hub/api/live_cache.py) with its JSON rendered
    once: ``data`` for any other negotiated format, ``json`` (``render_json(data)``) for
    plain JSON."""

    data: Any
    json: bytes

    @classmethod
    def of(cls, data: Any) -> SharedJSON:
        return cls(data, render_json(data))


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is None:
            try:
                return orjson.dumps(data, default=_encoder.default, option=_OPTIONS)
            except (TypeError, orjson.JSONEncodeError):
                pass
        return super().render(data, accepted_media_type, renderer_context)
