"""Make an API token for a user and print it (for integration accounts and scripts)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.people import is_choosable
from approvals.services.api_tokens import token_create
from approvals.services.errors import InvalidInput


class Command(BaseCommand):
    help = "Make a personal API token for USERNAME and print it once (only a hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("name", help="What the token is for, e.g. 'ERP integration'.")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        # Guardian's anonymous user is no one (an inactive account is told why, below).
        if user is None or (user.is_active and not is_choosable(user)):
            raise CommandError(f"no user '{username}'")
        try:
            # The command runs with the operator's shell access: it acts as the user.
            _, plaintext = token_create(user=user, name=name, actor=user, now=timezone.now())
        except InvalidInput as exc:
            problems = "; ".join(m for ms in exc.field_errors.values() for m in ms)
            raise CommandError(problems or exc.message) from None
        self.stdout.write(plaintext)
