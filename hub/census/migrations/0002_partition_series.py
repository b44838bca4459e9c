"""Turn the two time-series tables into PostgreSQL tables range-partitioned by month.

Django created them as plain tables (0001) so its model state stays generated; this converts
them before any row exists. Each parent gets a DEFAULT partition, so a record from a month
without a partition is stored rather than refused, and ``census_ensure_partitions()`` creates
monthly partitions ahead of time (the consumer calls it at start and daily), moving any rows
of that month out of the default partition first, which PostgreSQL requires.
"""

from django.db import migrations

SERIES = ("census_censussnapshot", "census_flowevent")

INDEXES = {
    "census_censussnapshot": [
        "CREATE INDEX census_snap_unit_time ON census_censussnapshot (unit_id, observed_at)",
        "CREATE INDEX census_snap_hosp_time ON census_censussnapshot (hospital_id, observed_at)",
    ],
    "census_flowevent": [
        "CREATE INDEX census_flow_hosp_time ON census_flowevent (hospital_id, observed_at)",
        "CREATE INDEX census_flow_surrogate ON census_flowevent (site_code, surrogate_id) "
        "WHERE NOT (surrogate_id = '')",
    ],
}

ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION census_ensure_partitions(parent text, first_month date, months int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    part text;
    created int := 0;
BEGIN
    -- Two consumers starting together must not both try to create the same partition.
    PERFORM pg_advisory_xact_lock(hashtext('census_ensure_partitions:' || parent));
    FOR i IN 0 .. months - 1 LOOP
        lo := (date_trunc('month', first_month) + make_interval(months => i))::date
              ::timestamp AT TIME ZONE 'UTC';
        hi := ((lo AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        part := format('%s_p%s', parent, to_char(lo AT TIME ZONE 'UTC', 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent
            );
            EXECUTE format(
                'WITH moved AS (DELETE FROM %I WHERE observed_at >= %L AND observed_at < %L '
                'RETURNING *) INSERT INTO %I SELECT * FROM moved',
                parent || '_default', lo, hi, part
            );
            EXECUTE format(
                'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                parent, part, lo, hi
            );
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
"""


def _convert(table: str) -> list[str]:
    return [
        f"CREATE TABLE {table}_p (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (observed_at)",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_p RENAME TO {table}",
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (event_id, observed_at)",
        *INDEXES[table],
        f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT",
        # Last month, this month and two ahead; the consumer keeps extending.
        f"SELECT census_ensure_partitions('{table}', "
        "(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date, 4)",
    ]


def _unconvert(table: str) -> list[str]:
    return [
        f"CREATE TABLE {table}_plain (LIKE {table} INCLUDING ALL)",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_plain RENAME TO {table}",
    ]


class Migration(migrations.Migration):
    dependencies = [("census", "0001_initial")]

    operations = [
        migrations.RunSQL(ENSURE_PARTITIONS, "DROP FUNCTION census_ensure_partitions"),
        *[migrations.RunSQL(_convert(table), _unconvert(table)) for table in SERIES],
    ]
