"""`manage.py seed_demo`: demo users and roles, then the engine's demo workflows if it has any."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sized
from typing import Any

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_PASSWORD, USERS, ensure_demo_users

# The workflow engine hooks its example definitions in here once it provides this module.
WORKFLOWS_MODULE = "approvals.demo"


class Command(BaseCommand):
    help = "Create the demo users, roles and workflows that are missing (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = ensure_demo_users()
        self.stdout.write(
            f"Demo users: {len(result.created_users)} created, "
            f"{len(result.existing_users)} already present; "
            f"roles created: {', '.join(result.created_roles) or 'none'}."
        )
        usernames = ", ".join(user.username for user in USERS)
        if result.passwords_set:
            self.stdout.write(f"Log in as {usernames} with the password {DEMO_PASSWORD!r}.")
        else:
            if result.passwords_disabled:
                self.stdout.write(
                    self.style.WARNING(
                        "Disabled the demo password of: " + ", ".join(result.passwords_disabled)
                    )
                )
            self.stdout.write(
                self.style.WARNING(
                    "DEBUG is off, so demo users get no demo password; set passwords with "
                    "`python manage.py changepassword <username>` "
                    f"(users: {usernames})."
                )
            )

        if importlib.util.find_spec(WORKFLOWS_MODULE) is not None:
            workflows = importlib.import_module(WORKFLOWS_MODULE)
            outcome = workflows.ensure_demo_workflows()
            self.stdout.write(f"Demo workflows: {_summary(outcome)}.")


def _summary(outcome: object) -> str:
    if outcome is None:
        return "ensured"
    if isinstance(outcome, Sized) and not isinstance(outcome, str):
        return f"{len(outcome)} ensured"
    return str(outcome)
