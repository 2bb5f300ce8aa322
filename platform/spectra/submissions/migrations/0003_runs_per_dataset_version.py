"""Runs and results name their dataset version (a submission is evaluated on every current variant) and
results carry a condition (a perturbation); stored scores may hold one row per condition."""
import django.db.models.deletion
from django.db import migrations, models


def fill_dataset(apps, schema_editor):
    for name in ("EvaluationRun", "Result"):
        model = apps.get_model("submissions", name)
        for row in model.objects.select_related("submission").filter(dataset__isnull=True):
            row.dataset_id = row.submission.dataset_id
            row.save(update_fields=["dataset"])


class Migration(migrations.Migration):
    dependencies = [
        ("benchmarks", "0004_dataset_description"),
        ("submissions", "0002_result_intervals"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluationrun", name="dataset",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="runs",
                                    to="benchmarks.dataset", help_text="The dataset version this shard reads."),
        ),
        migrations.AddField(
            model_name="result", name="dataset",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="results",
                                    to="benchmarks.dataset"),
        ),
        migrations.RunPython(fill_dataset, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="evaluationrun", name="dataset",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="runs",
                                    to="benchmarks.dataset", help_text="The dataset version this shard reads."),
        ),
        migrations.AlterField(
            model_name="result", name="dataset",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="results",
                                    to="benchmarks.dataset"),
        ),
        migrations.AddField(
            model_name="evaluationrun", name="worker",
            field=models.CharField(blank=True, help_text="The evaluation worker that ran it.", max_length=200),
        ),
        migrations.AddField(
            model_name="result", name="condition",
            field=models.CharField(blank=True, default="", max_length=50,
                                   help_text='A perturbation, e.g. "jpeg-90"; "" is clean.'),
        ),
        migrations.AddField(
            model_name="imagescores", name="conditions",
            field=models.JSONField(blank=True, default=list,
                                   help_text="The scores' rows: one per condition (\"\" is clean); empty means [\"\"]."),
        ),
        migrations.RemoveConstraint(model_name="result", name="unique_result"),
        migrations.AddConstraint(
            model_name="result",
            constraint=models.UniqueConstraint(fields=("submission", "dataset", "protocol", "condition", "subset"),
                                               name="unique_result_per_version"),
        ),
        migrations.AlterField(
            model_name="imagescores", name="scores",
            field=models.BinaryField(help_text="zlib-compressed little-endian float32 probabilities 'generated', "
                                               "conditions × count, row-major"),
        ),
        migrations.AlterField(model_name="result", name="schema_version", field=models.PositiveIntegerField(default=3)),
        migrations.AlterModelOptions(
            name="result", options={"ordering": ["submission", "dataset", "protocol", "condition", "subset"]},
        ),
    ]
