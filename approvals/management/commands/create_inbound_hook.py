"""Make an inbound webhook of a published workflow and print its path (and its secret when
the command chose it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from approvals.models import HookAction
from approvals.services.errors import InvalidInput
from approvals.services.inbound_hooks import inbound_hook_create


class Command(BaseCommand):
    help = (
        "Make an inbound webhook NAME of the published workflow KEY and print its path, "
        "POST /hooks/<KEY>/<hook id>/. Without --secret a random secret is made and printed "
        "once, on the second line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The workflow's key, e.g. purchase-order.")
        parser.add_argument("name", help="What the hook is for, e.g. 'ERP orders'.")
        parser.add_argument("--secret", default="", help="The shared secret (16+ characters).")
        parser.add_argument("--action", choices=HookAction.values, default=HookAction.START)
        parser.add_argument("--event", default="", help="The event an event hook sends.")
        parser.add_argument(
            "--business-key",
            default="",
            help="Where the body holds the business key: /order/id or order.id.",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=SOURCE",
            help="A form (or event data) field from a JSON Pointer or an expression; repeat.",
        )
        parser.add_argument(
            "--run-as", default="", help="Username of the service account; default: the owner."
        )

    def handle(self, *args: Any, key: str, name: str, **options: Any) -> None:
        mapping: dict[str, str] = {}
        for item in options["map"]:
            field, sep, source = item.partition("=")
            if not sep or not field.strip():
                raise CommandError(f"--map {item!r}: write FIELD=SOURCE, e.g. amount=/order/total")
            mapping[field.strip()] = source.strip()
        run_as = None
        if options["run_as"]:
            run_as = get_user_model().objects.filter(username=options["run_as"]).first()
            if run_as is None:
                raise CommandError(f"no user '{options['run_as']}'")
        try:
            hook, secret = inbound_hook_create(
                workflow_key=key,
                name=name,
                secret=options["secret"],
                action=options["action"],
                event=options["event"],
                business_key=options["business_key"],
                mapping=mapping,
                run_as=run_as,
                now=timezone.now(),
            )
        except InvalidInput as exc:
            problems = "; ".join(f"{f}: {m}" for f, ms in exc.field_errors.items() for m in ms)
            raise CommandError(f"{exc.message}: {problems}" if problems else exc.message) from None
        self.stdout.write(hook.path)
        if not options["secret"]:
            self.stdout.write(secret)
