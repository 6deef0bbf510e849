from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Outbox subscribers register themselves when imported.
        from approvals.services import notifications  # noqa: F401
