"""Audit events get a MAC made with AUDIT_CHAIN_KEY (events already written keep an empty one and
verify by their hashes alone), and on PostgreSQL the audit table refuses TRUNCATE as it refuses
UPDATE and DELETE (0002): a statement-level trigger, as row triggers never see a TRUNCATE, also
one that cascades from the instances. SQLite has no TRUNCATE.
"""

from django.db import migrations, models

CREATE = """
CREATE TRIGGER approvals_audit_no_truncate
    BEFORE TRUNCATE ON approvals_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION approvals_audit_append_only();
"""

DROP = "DROP TRIGGER IF EXISTS approvals_audit_no_truncate ON approvals_auditevent;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0007_api")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(blank=True, db_default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac_key_id",
            field=models.CharField(blank=True, db_default="", max_length=16),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
