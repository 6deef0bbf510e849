"""Who took part keeps access: a guardian object permission to view the request, granted in the
transaction of the step that made them a participant (see approvals.permissions)."""

from __future__ import annotations

from django.contrib.auth.models import Permission

from approvals.caching import ProcessCache
from approvals.models import InstanceUserPermission
from approvals.outbox.subscribers import Batch, subscribe
from approvals.permissions import VIEW_INSTANCE

# The payload fields naming the people a topic makes participants.
PARTICIPANT_FIELDS = {
    "task.claimed": ("assignee",),
    "task.decided": ("actor", "on_behalf_of"),
    "task.delegated": ("to", "by", "on_behalf_of"),
    "task.reassigned": ("to", "on_behalf_of"),
}


_view_permission_id = ProcessCache(
    lambda: Permission.objects.get(content_type__app_label="approvals", codename=VIEW_INSTANCE).pk,
    models=[Permission],
)


@subscribe(*PARTICIPANT_FIELDS)
def grant_participants(batch: Batch) -> None:
    pairs = {
        (message.payload[field], message.instance_id)
        for message in batch
        for field in PARTICIPANT_FIELDS[message.topic]
        if message.payload.get(field)
    }
    if not pairs:
        return
    permission_id = _view_permission_id.get()
    InstanceUserPermission.objects.bulk_create(
        [
            InstanceUserPermission(
                user_id=user_id, content_object_id=instance_id, permission_id=permission_id
            )
            for user_id, instance_id in sorted(pairs)
        ],
        ignore_conflicts=True,
    )
