from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Outbox subscribers register themselves when imported (services/subscribers.py).
        from approvals import live  # noqa: F401  (closes signed-out sessions' sockets)
        from approvals.services import access, actions, notifications, webhooks  # noqa: F401
