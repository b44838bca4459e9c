"""Recommendations: ``figures_as_of`` (backfilled with ``renewed_at``: until now every renewal
with a moved snapshot rewrote the figures). Surge level changes: each copied checklist moves
into ``SurgeChecklist`` (stored once per distinct content) and the change points at it."""

import hashlib

import django.db.models.deletion
import orjson
from django.db import migrations, models


def _move_checklists(apps, schema_editor):  # type: ignore[no-untyped-def]
    change_model = apps.get_model("coordination", "SurgeLevelChange")
    checklist_model = apps.get_model("coordination", "SurgeChecklist")
    by_digest: dict[str, list[int]] = {}
    items_of: dict[str, list[str]] = {}
    for pk, items in change_model.objects.values_list("pk", "checklist").iterator():
        items = list(items or [])
        d = hashlib.sha256(orjson.dumps(items)).hexdigest()
        items_of[d] = items
        by_digest.setdefault(d, []).append(pk)
    for d, items in items_of.items():
        checklist_model.objects.get_or_create(digest=d, defaults={"items": items})
    for d, pks in by_digest.items():
        for start in range(0, len(pks), 10_000):
            change_model.objects.filter(pk__in=pks[start : start + 10_000]).update(
                checklist_ref_id=d
            )


def _copy_back(apps, schema_editor):  # type: ignore[no-untyped-def]
    change_model = apps.get_model("coordination", "SurgeLevelChange")
    checklist_model = apps.get_model("coordination", "SurgeChecklist")
    for c in checklist_model.objects.all():
        change_model.objects.filter(checklist_ref_id=c.digest).update(checklist=c.items)


class Migration(migrations.Migration):
    dependencies = [
        ("coordination", "0005_grouped_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="diversionrecommendation",
            name="figures_as_of",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunSQL(
            "UPDATE coordination_diversionrecommendation SET figures_as_of = renewed_at",
            migrations.RunSQL.noop,
        ),
        migrations.CreateModel(
            name="SurgeChecklist",
            fields=[
                ("digest", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("items", models.JSONField(default=list)),
            ],
        ),
        migrations.AddField(
            model_name="surgelevelchange",
            name="checklist_ref",
            field=models.ForeignKey(
                db_column="checklist_digest",
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="coordination.surgechecklist",
            ),
        ),
        migrations.RunPython(_move_checklists, _copy_back),
        migrations.RemoveField(model_name="surgelevelchange", name="checklist"),
        migrations.AlterField(
            model_name="surgelevelchange",
            name="checklist_ref",
            field=models.ForeignKey(
                db_column="checklist_digest",
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="coordination.surgechecklist",
            ),
        ),
    ]
