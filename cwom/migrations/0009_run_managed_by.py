"""A run says who drives it: ``managed_by`` (service: enqueued, the workers run it; client: its maker does).

Enqueued runs that exist already are marked by execution's 0002 (this app does not know that table). SQLite
adds the column by rebuilding ``cwom_run``: the guards are lifted around it and installed again.
"""

from django.db import migrations, models

from cwom import db_guards


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0008_run_retry_of'),
    ]

    operations = [
        migrations.RunPython(db_guards.lift_for_sqlite_rebuild_0009, db_guards.restore_after_sqlite_rebuild_0009),
        migrations.AddField(
            model_name='run',
            name='managed_by',
            field=models.CharField(choices=[('service', 'Service'), ('client', 'Client')], default='client', max_length=16),
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.CheckConstraint(condition=models.Q(('managed_by__in', ['service', 'client'])), name='run_managed_by_valid', violation_error_code='invalid_choice', violation_error_message='managed_by must be one of: service, client.'),
        ),
        migrations.RunPython(db_guards.restore_after_sqlite_rebuild_0009, db_guards.lift_for_sqlite_rebuild_0009),
    ]
