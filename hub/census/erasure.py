"""Erasure of a patient's de-identified flow records, by site surrogate.

The hub never knows who a surrogate is; the site resolves an erasure request to its
surrogates and governance hands them to the erasers registered here.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction


@transaction.atomic
def flow_erase_surrogates(*, site_code: str, surrogate_ids: Iterable[str]) -> int:
    """Delete every flow record of these surrogates at this site; returns the row count."""
    ids = [s for s in surrogate_ids if s]
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM census_flowevent WHERE site_code = %s AND surrogate_id = ANY(%s)",
            [site_code, ids],
        )
        return cursor.rowcount


def register() -> None:
    """Register with governance's erasure registry, if governance provides one."""
    try:
        from governance import erasure
    except ImportError:
        return
    register_eraser = getattr(erasure, "register_eraser", None)
    if register_eraser is not None:
        register_eraser("hub.census.flow", flow_erase_surrogates)
