from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from approvals.audit_export.signing import SigningKeyMissing, public_key_pem


class Command(BaseCommand):
    help = "Print the public key that verifies audit bundles (PEM), for auditors to keep."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(public_key_pem(), ending="")
        except SigningKeyMissing as exc:
            raise CommandError(str(exc)) from None
