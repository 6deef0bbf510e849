"""URLs of things, for links that leave the page (Slack, e-mail, webhooks, notifications)."""

from __future__ import annotations

from django.conf import settings


def task_path(task_id: int) -> str:
    """The task page; every link to a task goes through here."""
    return f"/tasks/{task_id}/"


def request_path(instance_id: int) -> str:
    """The request page; links about a request rather than one of its tasks."""
    return f"/requests/{instance_id}/"


def absolute(path: str) -> str:
    return settings.SITE_URL + path
