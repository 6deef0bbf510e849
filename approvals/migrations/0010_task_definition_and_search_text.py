"""The definition and the searchable words kept on every task, and on PostgreSQL a trigram index
on the live tasks' words, so that the inbox filtered by workflow or by text reads the task
table alone (bench/inbox.py, docs/benchmarks.md)."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2000


def fill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "UPDATE approvals_task t SET definition_id = i.definition_id, "
            "search_text = lower(i.title || E'\\n' || i.business_key || E'\\n' || t.label) "
            "FROM approvals_workflowinstance i WHERE i.id = t.instance_id"
        )
        # The foreign key's check is deferred; run it now, before the column is altered.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        return
    # Elsewhere in Python: SQLite's lower() knows only ASCII letters.
    Task = apps.get_model("approvals", "Task")
    tasks = Task.objects.select_related("instance").order_by("pk")
    batch = []
    for task in tasks.iterator(chunk_size=BATCH):
        instance = task.instance
        task.definition_id = instance.definition_id
        task.search_text = "\n".join((instance.title, instance.business_key, task.label)).lower()
        batch.append(task)
        if len(batch) == BATCH:
            Task.objects.bulk_update(batch, ["definition", "search_text"])
            batch = []
    Task.objects.bulk_update(batch, ["definition", "search_text"])


def index_words(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Left in place when the migration is undone: other schemas may use it. (Django's own
        # TrigramExtension also undoes on SQLite, where it fails.)
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX task_live_search_trgm ON approvals_task "
            "USING gin (search_text gin_trgm_ops) WHERE status IN ('open', 'claimed')"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS task_live_search_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0009_withdrawn_status_and_step_attempts"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="definition",
            field=models.ForeignKey(
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="tasks",
                to="approvals.workflowdefinition",
            ),
        ),
        migrations.AddField(
            model_name="task",
            name="search_text",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The request's title and reference and the task's label, lower case, "
                "one per line: what the inbox's free-text search looks in.",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="task",
            name="definition",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="tasks",
                to="approvals.workflowdefinition",
            ),
        ),
        migrations.RunPython(index_words, drop_index, elidable=False),
    ]
