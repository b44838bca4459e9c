"""A cheap version of the travel-time table, moved by the database on every change.

Coordination keeps each region's sorted neighbour lists until its travel times change
(``services._neighbourhood``); counting and taking the newest of the table's rows each minute
to notice that scanned every travel time. Instead, one row holds a counter that triggers on
``registry_traveltime`` bump: once per changing transaction, at its commit (a deferred
constraint trigger, so the counter's row lock is taken after all of the writer's travel-row
locks and two writers cannot deadlock on it), and on TRUNCATE. Each changing statement also
counts itself in a transaction-local setting, so a transaction that changes travel times and
then evaluates sees its own change. Any insert, update or delete, by the ORM, raw SQL or COPY,
moves one or the other.
"""

from django.db import migrations

FORWARD = """
CREATE TABLE coordination_travel_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO coordination_travel_version (id, version) VALUES (1, 0);

CREATE FUNCTION coordination_travel_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    me text := pg_current_xact_id()::text;
BEGIN
    -- Once per transaction however many rows it changed: the transaction-local setting
    -- spares the other rows' calls a query.
    IF current_setting('coordination.travel_bumped', true) = me THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('coordination.travel_bumped', me, true);
    UPDATE coordination_travel_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE FUNCTION coordination_travel_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config(
        'coordination.travel_touched',
        (coalesce(nullif(current_setting('coordination.travel_touched', true), ''), '0')::bigint
            + 1)::text,
        true
    );
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER coordination_travel_changed
    AFTER INSERT OR UPDATE OR DELETE ON registry_traveltime
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION coordination_travel_bump();

CREATE TRIGGER coordination_travel_touched
    AFTER INSERT OR UPDATE OR DELETE ON registry_traveltime
    FOR EACH STATEMENT EXECUTE FUNCTION coordination_travel_touched();

CREATE TRIGGER coordination_travel_truncated
    AFTER TRUNCATE ON registry_traveltime
    FOR EACH STATEMENT EXECUTE FUNCTION coordination_travel_bump();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS coordination_travel_truncated ON registry_traveltime;
DROP TRIGGER IF EXISTS coordination_travel_touched ON registry_traveltime;
DROP TRIGGER IF EXISTS coordination_travel_changed ON registry_traveltime;
DROP FUNCTION IF EXISTS coordination_travel_touched();
DROP FUNCTION IF EXISTS coordination_travel_bump();
DROP TABLE IF EXISTS coordination_travel_version;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("coordination", "0002_scenario_run"),
        ("registry", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
