from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Outbox subscribers and retry queues register themselves when imported.
        # Celery discovers tasks in the worker only; sending by name needs them here too.
        from approvals import tasks  # noqa: F401
        from approvals.artifacts import subscriber as documents  # noqa: F401
        from approvals.automation import builtin, runner, subflows, triggers  # noqa: F401
        from approvals.integrations.email import services as email_services  # noqa: F401
        from approvals.integrations.email import subscriber as email  # noqa: F401
        from approvals.integrations.slack import services as slack_services  # noqa: F401
        from approvals.integrations.slack import subscriber as slack  # noqa: F401
        from approvals.integrations.teams import services as teams_services  # noqa: F401
        from approvals.integrations.teams import subscriber as teams  # noqa: F401
        from approvals.integrations.webhooks import subscriber as webhooks  # noqa: F401
        from approvals.notify import push  # noqa: F401  (closes signed-out sessions' sockets)
        from approvals.notify import subscriber as notify  # noqa: F401
        from approvals.services import access, api_tokens  # noqa: F401  (tokens: deactivation)
