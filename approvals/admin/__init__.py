"""Django admin, a module per concern; importing this package registers them all."""

from approvals.admin import definitions  # noqa: F401
from approvals.api import admin as api_admin  # noqa: F401
from approvals.notify import admin as notify_admin  # noqa: F401
