"""Alerts grouped per hospital and kind: ``opened_at`` (the escalation clock, re-started when a
grouped alert notifies again after an acknowledgement) and ``history`` (its changes and
acknowledgements).

Live per-figure threshold and forecast alerts (``threshold:<figure>:H``, ``forecast:<unit>:H``)
are resolved, not converted: the region's next evaluation (within the minute) raises the
grouped ones (``threshold:H``, ``forecast:H``) from the figures as they stand, with the same
words every later raise has. Converting would have to merge per-figure acknowledgements into
one group state that nobody gave (an acknowledged ED figure and an unacknowledged ICU figure
make a group that is neither), and to rebuild words from stored values. The cost is one
notification per live group at deployment, fewer than the per-figure ones it replaces.
"""

from django.db import migrations, models

RESOLVE = """
UPDATE coordination_alert SET state = 'resolved', resolved_at = now()
WHERE state <> 'resolved' AND kind IN ('threshold', 'forecast')
"""


class Migration(migrations.Migration):
    dependencies = [("coordination", "0004_redundant_indexes_storage")]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="opened_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(
            "UPDATE coordination_alert SET opened_at = raised_at", migrations.RunSQL.noop
        ),
        migrations.AlterField(
            model_name="alert",
            name="opened_at",
            field=models.DateTimeField(),
        ),
        migrations.AddField(
            model_name="alert",
            name="history",
            field=models.JSONField(blank=True, default=list),
        ),
        # Rows written by COPY without a history (events, stale feeds) start with none.
        migrations.RunSQL(
            "ALTER TABLE coordination_alert ALTER COLUMN history SET DEFAULT '[]'::jsonb",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(RESOLVE, migrations.RunSQL.noop),
    ]
