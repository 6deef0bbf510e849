from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Outbox subscribers register themselves on import.
        from approvals.services import webhooks  # noqa: F401
