"""On PostgreSQL the audit table refuses UPDATE and DELETE (invariant 3).

TRUNCATE is a statement-level operation these row triggers do not see; a later migration
(audit_mac_and_no_truncate) refuses it with a statement-level trigger.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION approvals_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on approvals_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER approvals_audit_append_only
    BEFORE UPDATE OR DELETE ON approvals_auditevent
    FOR EACH ROW EXECUTE FUNCTION approvals_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS approvals_audit_append_only ON approvals_auditevent;
DROP FUNCTION IF EXISTS approvals_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
