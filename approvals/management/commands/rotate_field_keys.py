from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from approvals.sensitive import FieldKeyError
from approvals.services.field_keys import field_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-wrap every request's data key for its sensitive fields with the current (first) "
        "key of FIELD_ENCRYPTION_KEYS. The encrypted values are not touched; running it again "
        "changes nothing. Afterwards the older keys can be removed from FIELD_ENCRYPTION_KEYS."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rotation = field_keys_rotate()
        except FieldKeyError as exc:
            raise CommandError(str(exc)) from None
        details = ", ".join(
            f"{count} from '{kek}'" for kek, count in sorted(rotation.rewrapped.items())
        )
        self.stdout.write(
            f"Re-wrapped {rotation.total} data keys with '{rotation.current}'"
            + (f" ({details})" if details else "")
            + f"; {rotation.already_current} already used it."
        )
