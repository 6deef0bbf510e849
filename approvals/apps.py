from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Subscribers to the engine's outbox register themselves on import.
        from approvals.services import access  # noqa: F401
