"""Template filters for the alerts page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from hub.coordination.alerts_rules import breach_words as _breach_words

register = template.Library()


@register.filter
def breach_words(breach: Mapping[str, Any]) -> str:
    """A grouped alert's member in words ("ED occupancy 103% (alert >= 100%)")."""
    return _breach_words(breach)
