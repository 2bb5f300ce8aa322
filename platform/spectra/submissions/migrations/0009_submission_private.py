"""Private submissions: visible only to their owner and staff."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('submissions', '0008_run_leases'),
    ]

    operations = [
        migrations.AddField(
            model_name='submission',
            name='private',
            field=models.BooleanField(default=False, help_text='Visible only to its owner and staff: its page, results, leaderboard rows and artifact are not found (404) for anyone else.'),
        ),
    ]
