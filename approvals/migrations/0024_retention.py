"""Retention: legal holds on requests and the tombstones of deleted ones.

On PostgreSQL the audit table still refuses UPDATE and TRUNCATE, and now refuses DELETE
except of the events of a request whose tombstone (approvals_retiredrequest) exists: the
retention run writes the tombstone, with the chain head and the archive's place, before it
deletes anything, in the same transaction. Tombstones themselves are never updated nor
deleted.
"""

from django.db import migrations, models

AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION approvals_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM approvals_retiredrequest WHERE id = OLD.instance_id
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused on approvals_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

PREVIOUS_AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION approvals_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on approvals_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

TOMBSTONES = """
CREATE OR REPLACE FUNCTION approvals_retired_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tombstones are append-only: % refused on approvals_retiredrequest', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER approvals_retired_append_only
    BEFORE UPDATE OR DELETE ON approvals_retiredrequest
    FOR EACH ROW EXECUTE FUNCTION approvals_retired_append_only();
CREATE TRIGGER approvals_retired_no_truncate
    BEFORE TRUNCATE ON approvals_retiredrequest
    FOR EACH STATEMENT EXECUTE FUNCTION approvals_retired_append_only();
"""

DROP_TOMBSTONES = """
DROP TRIGGER IF EXISTS approvals_retired_no_truncate ON approvals_retiredrequest;
DROP TRIGGER IF EXISTS approvals_retired_append_only ON approvals_retiredrequest;
DROP FUNCTION IF EXISTS approvals_retired_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(AUDIT_FUNCTION, params=None)
        schema_editor.execute(TOMBSTONES, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TOMBSTONES, params=None)
        schema_editor.execute(PREVIOUS_AUDIT_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0023_sub_requests"),
    ]

    operations = [
        migrations.CreateModel(
            name="RetiredRequest",
            fields=[
                (
                    "id",
                    models.PositiveBigIntegerField(
                        help_text="The request's id.", primary_key=True, serialize=False
                    ),
                ),
                ("workflow_key", models.CharField(max_length=100)),
                ("definition_version", models.PositiveIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("completed", "Completed"),
                            ("rejected", "Rejected"),
                            ("cancelled", "Cancelled"),
                            ("failed", "Failed"),
                            ("withdrawn", "Withdrawn"),
                        ],
                        max_length=20,
                    ),
                ),
                ("created_at", models.DateTimeField()),
                ("completed_at", models.DateTimeField()),
                (
                    "retention",
                    models.CharField(help_text="The period it was kept for.", max_length=20),
                ),
                ("retired_at", models.DateTimeField()),
                ("head_seq", models.PositiveIntegerField()),
                ("head_hash", models.CharField(blank=True, max_length=64)),
                ("bundle_key", models.CharField(max_length=300)),
                ("bundle_sha256", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["-retired_at", "-id"],
            },
        ),
        migrations.AlterModelOptions(
            name="workflowinstance",
            options={
                "ordering": ["-created_at"],
                "permissions": [
                    ("cancel_instance", "Can cancel any instance"),
                    ("send_event", "Can send external events to instances"),
                    ("reassign_task", "Can reassign any task"),
                    ("view_insights", "Can see the process insights (dashboards, heat map)"),
                    ("hold_legal", "Can place and release legal holds on requests"),
                ],
            },
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="legal_hold",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="legal_hold_reason",
            field=models.CharField(blank=True, db_default="", max_length=500),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
