from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery


def copy_keys_and_part_duplicates(apps, schema_editor):
    """Each request gets its workflow's key; a business key that several requests of one
    workflow share stays with the oldest, and each later one becomes "PO-1 (#57)" (its own
    request number), so that the constraint can hold and no reference is lost; its tasks are
    then searched by the new one (Task.search_text, as the engine writes it)."""
    Instance = apps.get_model("approvals", "WorkflowInstance")
    Task = apps.get_model("approvals", "Task")
    Definition = apps.get_model("approvals", "WorkflowDefinition")
    Instance.objects.update(
        workflow_key=Subquery(Definition.objects.filter(pk=OuterRef("definition_id")).values("key"))
    )
    shared = (
        Instance.objects.exclude(business_key="")
        .values("workflow_key", "business_key")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    for group in shared:
        later = Instance.objects.filter(
            workflow_key=group["workflow_key"], business_key=group["business_key"]
        ).order_by("created_at", "pk")[1:]
        for instance in later:
            suffix = f" (#{instance.pk})"
            instance.business_key = group["business_key"][: 100 - len(suffix)] + suffix
            instance.save(update_fields=["business_key"])
            tasks = Task.objects.filter(instance=instance)
            for label in set(tasks.values_list("label", flat=True)):
                words = "\n".join((instance.title, instance.business_key, label)).lower()
                tasks.filter(label=label).update(search_text=words)
    if schema_editor.connection.vendor == "postgresql":
        # The updates leave deferred foreign-key checks pending, and PostgreSQL builds no
        # index on a table that has some: run them now, before the constraint's index.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0010_task_definition_and_search_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowdefinition",
            name="inbox_columns",
            field=models.JSONField(
                blank=True, default=list, help_text="Form fields the inbox shows as columns."
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="workflow_key",
            field=models.CharField(db_default="", editable=False, max_length=100),
        ),
        migrations.RunPython(
            copy_keys_and_part_duplicates, migrations.RunPython.noop, elidable=False
        ),
        migrations.AddConstraint(
            model_name="workflowinstance",
            constraint=models.UniqueConstraint(
                condition=models.Q(("business_key", ""), _negated=True),
                fields=("workflow_key", "business_key"),
                name="business_key_unique_per_workflow",
            ),
        ),
    ]
