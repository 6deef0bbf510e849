from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Subscribers register themselves on import (services/subscribers.py).
        from approvals.services import actions  # noqa: F401
