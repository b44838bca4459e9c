"""Paging the audit log without counting all of it.

The log grows by one row per API call, page view and export: at 500 requests/s that is
≈ 43 million rows a day, and a ``count(*)`` of it, which offset paging needs for its page
numbers, takes ≈ 0.1 s a million rows on the development machine (300 ms for 3.3 million) —
past the web's 30 s statement timeout (docs/deploy.md) after a few days of such traffic. The
screen counts at most ``AUDIT_COUNT_CAP`` matching rows and says "more than" beyond; the
API pages by cursor on the id, which needs no count at all.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from rest_framework.pagination import CursorPagination

AUDIT_COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Django's paginator, counting at most ``cap`` rows (``count`` is then ``cap`` and
    ``capped`` is true): one bounded query, however long the log."""

    def __init__(
        self,
        object_list: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        cap: int | None = None,
    ) -> None:
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.cap = AUDIT_COUNT_CAP if cap is None else cap

    @cached_property
    def _bounded(self) -> int:
        # A queryset: one count(*) over a LIMIT, unordered so any scan may stop early.
        queryset: Any = self.object_list
        return int(queryset.order_by()[: self.cap + 1].count())

    @cached_property
    def count(self) -> int:
        return min(self._bounded, self.cap)

    @property
    def capped(self) -> bool:
        return self._bounded > self.cap


class AuditCursorPagination(CursorPagination):
    """The API's audit search, newest first, by cursor: no count, no OFFSET scan."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
