"""Times read with psycopg's compiled parser.

Django reads ``timestamptz`` columns through its own loader (``BaseTzLoader``: the parsed
time given the configured time zone), which derives from psycopg's *pure-Python* loader, so
every time read is parsed in Python even with ``psycopg[binary]`` installed (Django ticket
#36960; psycopg's compiled loaders cannot be subclassed). Reading a page of census history
or a national region's live alerts parses thousands of times; in Python that was about 4 µs
each. The loader here keeps Django's contract — the same class attribute ``timezone``, the
same answer: the session's time with ``tzinfo`` replaced by it (the session's time zone is
Django's, ``DatabaseWrapper._configure_timezone``) — and parses with the compiled loader
registered in psycopg's global adapters (its public ``get_loader``), or Python's where there
is none.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import psycopg
from django.db.backends.postgresql.psycopg_any import BaseTzLoader  # type: ignore[import-untyped]
from psycopg.adapt import AdaptersMap
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.postgres.types["timestamptz"].oid
_PARSER: Any = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class FastTzLoader(BaseTzLoader):
    """Django's ``BaseTzLoader`` answer, parsed by the compiled loader."""

    timezone: tzinfo | None = None

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._parse = _PARSER(oid, context).load

    def load(self, data: Any) -> datetime:
        parsed: datetime = self._parse(data)
        return parsed.replace(tzinfo=self.timezone)


@lru_cache
def fast_adapters(template: AdaptersMap, timezone: tzinfo | None) -> AdaptersMap:
    """Django's adapters ``template`` with the time loader above for ``timezone``."""
    ctx = AdaptersMap(template)

    class SpecificFastTzLoader(FastTzLoader):
        pass

    SpecificFastTzLoader.timezone = timezone
    ctx.register_loader("timestamptz", SpecificFastTzLoader)
    return ctx
