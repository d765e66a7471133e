"""More rules the database holds itself (see cwom.db_guards.install_0006): an object's ``created_by`` never
changes, an issue's parent chain has no cycle (checked one writer at a time on PostgreSQL), and every data
blob of a context packet names a ``uri`` or an ``inline`` value.

Existing rows are not re-checked: the model layer has refused all three from the start.
"""

from django.db import migrations

from cwom import db_guards


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0005_token_expiry_and_name_rule'),
    ]

    operations = [
        migrations.RunPython(db_guards.install_0006, db_guards.uninstall_0006),
    ]
