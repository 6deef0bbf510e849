from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        # Connects the security log's line to axes' lockout signal.
        from accounts import throttling  # noqa: F401
