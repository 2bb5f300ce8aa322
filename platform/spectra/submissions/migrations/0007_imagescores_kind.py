"""Stored scores record their kind: rows written before evaluator 0.3 hold probabilities, later ones logits."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('submissions', '0006_safetensors_architecture'),
    ]

    operations = [
        # Existing rows were written as probabilities; rows written from now on default to logits.
        migrations.AddField(
            model_name='imagescores',
            name='kind',
            field=models.CharField(choices=[('logit', 'logit'), ('probability', 'probability')], default='probability', help_text='logit: the detector\'s logits; probability: the float32 probabilities stored before evaluator 0.3 (they tie at 1.0 for logits above ~17)', max_length=20),
        ),
        migrations.AlterField(
            model_name='imagescores',
            name='kind',
            field=models.CharField(choices=[('logit', 'logit'), ('probability', 'probability')], default='logit', help_text='logit: the detector\'s logits; probability: the float32 probabilities stored before evaluator 0.3 (they tie at 1.0 for logits above ~17)', max_length=20),
        ),
        migrations.AlterField(
            model_name='imagescores',
            name='scores',
            field=models.BinaryField(help_text="zlib-compressed little-endian float32 scores of 'generated' (of `kind`), conditions × count, row-major"),
        ),
    ]
