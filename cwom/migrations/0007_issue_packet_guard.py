"""One more rule the database holds itself (see cwom.db_guards.install_0007): an issue lists only its own
context packets. The model layer (``cwom.writes``) has refused the others' packets from the start, so existing
rows are not re-checked.
"""

from django.db import migrations

from cwom import db_guards


class Migration(migrations.Migration):

    dependencies = [
        ('cwom', '0006_created_by_parent_chain_blob_guards'),
    ]

    operations = [
        migrations.RunPython(db_guards.install_0007, db_guards.uninstall_0007),
    ]
