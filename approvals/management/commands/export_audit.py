from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from approvals.audit_export.bundle import FileUnreadable, Scope, write_bundle
from approvals.audit_export.signing import SigningKeyMissing
from approvals.services.errors import InvalidInput


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Write a signed audit bundle (.zip): the audit events of each request as JSON Lines, "
        "its documents' hashes (--include-files: the files too), the definitions' configs and a "
        "manifest of every chain's head, signed with AUDIT_SIGNING_KEY. Verify it offline with "
        "python -m approvals.verify_bundle FILE --public-key KEY."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--instance", type=int, help="only this request")
        parser.add_argument("--workflow", default="", help="only this workflow's requests")
        parser.add_argument(
            "--since", help="requests started on or after this day (YYYY-MM-DD, site time zone)"
        )
        parser.add_argument("--until", help="requests started on or before this day")
        parser.add_argument(
            "--include-files", action="store_true", help="put the documents' bytes in too"
        )
        parser.add_argument("--out", required=True, help="the .zip file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        scope = Scope(
            instance_id=options["instance"],
            workflow_key=options["workflow"],
            since=_day(options["since"]) if options["since"] else None,
            until=_day(options["until"]) if options["until"] else None,
            include_files=options["include_files"],
        )
        try:
            scope.check()
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a directory")
        # Written aside and moved into place: a failed export leaves no half-written bundle.
        handle, draft = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "w+b") as target:
                summary = write_bundle(scope, target, now=timezone.now())
            os.replace(draft, out)
        except (SigningKeyMissing, FileUnreadable) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if os.path.exists(draft):
                os.unlink(draft)
        size = out.stat().st_size
        if summary.broken_count:
            self.stderr.write(
                self.style.WARNING(
                    f"{summary.broken_count} request(s) have an audit chain that does not verify "
                    f"with this server's audit keys (first: {'; '.join(summary.broken)}). The "
                    "bundle records it (manifest field chain_check) and its verification fails "
                    "on it; investigate with manage.py verify_audit."
                )
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {out}: {summary.requests} request(s), {summary.events} event(s), "
                f"{summary.definitions} definition version(s), {summary.files} file(s), "
                f"{size / 1e6:.1f} MB"
            )
        )
