# Each unit's live state is rewritten with every census snapshot its site sends (one a
# minute per unit: a 6,000-hospital national region rewrites 60,000 rows a minute). None of
# the table's indexed columns (id, unit, hospital, audience) changes in such an update, so
# with room on the row's page PostgreSQL writes the new version there (a HOT update: no new
# entry in any of the four indexes, old versions pruned in place as pages are read). Full
# pages left room for 23% of the updates to be HOT in the coordination bench; half-full
# pages, for all of them (docs/coordination.md, "Renewals keyed by their inputs"). The cost
# is space: a 60,000-unit region's live rows take about twice their ≈ 60 MB.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("census", "0003_census_snapshot_site_time"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE census_unitstate SET (fillfactor = 50)",
            "ALTER TABLE census_unitstate RESET (fillfactor)",
        ),
    ]
