"""A smaller statistics sample for the audit log, on the columns its queries filter by.

The audit table takes one row for every API request (500 a second under the API load goal)
and never changes one, so autovacuum analyses it every tenth of its size of inserts. With the
default statistics target (100), ANALYZE samples 30,000 rows from across the table: 0.75 s of
a core on a 1.1-million-row log (``ANALYZE VERBOSE``, 2026-11-24), during which a 2-core hub
node serving 500 requests a second fell behind and recovered only seconds later (bench_load,
docs/hub.md "API load"). Its queries filter by time, actor, action, hospital, request id and
chain position (``governance.selectors.audit_events``, ``governance.chain``,
``governance.retention``): those columns keep statistics at target 10 (a 3,000-row sample:
ten most common values and a ten-bucket histogram, enough for an index on an append-only
log); the columns no query filters by (the texts, the detail, the object ids) get none. The
same ANALYZE then takes under 0.1 s. Reversible: ``-1`` restores the server's default.
"""

from django.db import migrations

TABLE = "governance_auditevent"
FILTERED = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_label",
    "action",
    "request_id",
    "hospital_ids",
    "chain_seq",
)
NOT_FILTERED = (
    "roles",
    "target",
    "method",
    "path",
    "status_code",
    "source_ip",
    "object_ids",
    "row_count",
    "detail",
    "chain_hash",
)


def _set(columns: tuple[str, ...], target: int) -> str:
    return "; ".join(
        f"ALTER TABLE {TABLE} ALTER COLUMN {column} SET STATISTICS {target}" for column in columns
    )


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_audit_append_only")]

    operations = [
        migrations.RunSQL(
            sql=f"{_set(FILTERED, 10)}; {_set(NOT_FILTERED, 0)}",
            reverse_sql=_set(FILTERED + NOT_FILTERED, -1),
        ),
    ]
