"""Django admin, a module per concern; importing this package registers them all."""

from approvals.admin import (  # noqa: F401
    asks,
    audit,
    definitions,
    failed_steps,
    instances,
    triggers,
)
from approvals.api import admin as api_admin  # noqa: F401
from approvals.integrations.email import admin as email_admin  # noqa: F401
from approvals.integrations.slack import admin as slack_admin  # noqa: F401
from approvals.integrations.teams import admin as teams_admin  # noqa: F401
from approvals.integrations.webhooks import admin as webhooks_admin  # noqa: F401
from approvals.notify import admin as notify_admin  # noqa: F401
