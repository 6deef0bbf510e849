"""Bursts: several notifications of one kind in one workflow, close together, read as one
("3 new tasks in Access request") on the notifications page and in the toasts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from approvals.models import Notification, NotificationKind

# Notifications this close to the previous one of their group join it.
BURST = timedelta(minutes=10)

GROUP_TEXTS = {
    NotificationKind.TASK_NEW: "{n} new tasks in {workflow}",
    NotificationKind.TASK_CLAIMED: "{n} tasks taken by others in {workflow}",
    NotificationKind.TASK_DELEGATED: "{n} tasks delegated to you in {workflow}",
    NotificationKind.DECISION: "{n} decisions on your requests in {workflow}",
    NotificationKind.REMINDER: "{n} reminders in {workflow}",
    NotificationKind.ESCALATION: "{n} tasks escalated to you in {workflow}",
    NotificationKind.COMPLETED: "{n} of your requests finished in {workflow}",
}


def group_text(kind: str, workflow: str) -> str:
    """The group's sentence with `{n}` left for the count (the browser's toasts fill it)."""
    text = GROUP_TEXTS.get(kind, "{n} notifications in {workflow}")
    return text.replace("{workflow}", workflow or "Signoff")


@dataclass
class Group:
    """One row of the notifications page: a notification, or a burst of them."""

    items: list[Notification] = field(default_factory=list)

    @property
    def first(self) -> Notification:
        return self.items[0]

    @property
    def text(self) -> str:
        if len(self.items) == 1:
            return self.first.text
        return group_text(self.first.kind, self.first.data.get("workflow", "")).replace(
            "{n}", str(len(self.items))
        )

    @property
    def unread(self) -> list[Notification]:
        return [n for n in self.items if n.read_at is None]

    @property
    def unread_ids(self) -> str:
        return ",".join(str(n.pk) for n in self.unread)


def groups(items: Iterable[Notification]) -> list[Group]:
    """Newest first as given; a notification joins the group just before it when both are of
    one kind and one workflow and at most BURST apart."""
    result: list[Group] = []
    for item in items:
        last = result[-1] if result else None
        if (
            last is not None
            and _key(last.items[-1]) == _key(item)
            and (last.items[-1].created_at - item.created_at <= BURST)
        ):
            last.items.append(item)
        else:
            result.append(Group([item]))
    return result


def _key(n: Notification) -> tuple[Any, ...]:
    return (n.kind, n.data.get("workflow", ""), n.read_at is None)
