"""`python manage.py mcp_server`: the MCP server of approvals/agents_mcp.py, over stdio (the
default) or streamable HTTP, acting as one API token's account."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.agents_mcp import build_server, token_for


class Command(BaseCommand):
    help = "Serve the MCP tools request_approval, get_request_status, list_my_pending_asks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--token",
            default=os.environ.get("SIGNOFF_TOKEN", ""),
            help="The API token the tools act as (default: $SIGNOFF_TOKEN).",
        )
        parser.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
        parser.add_argument("--host", default="127.0.0.1", help="streamable-http only.")
        parser.add_argument("--port", type=int, default=8765, help="streamable-http only.")

    def handle(self, *args: Any, **options: Any) -> None:
        token = options["token"]
        if not token:
            raise CommandError("give --token or set SIGNOFF_TOKEN")
        try:
            token_for(token)
        except ValueError as exc:
            raise CommandError(f"the token is refused: {exc}") from None
        server = build_server(token)
        if options["transport"] == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=options["host"], port=options["port"])
