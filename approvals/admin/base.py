"""What the admin modules share: read-only lists, the cancel form, a service error as one line."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from approvals.services.errors import WorkflowError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CancelForm(forms.Form):
    """The reason given when an operator cancels a request (its page, or a failed step's)."""

    reason = forms.CharField(max_length=500)


def error_text(exc: WorkflowError) -> str:
    """A service error as one message: its text, then each field's."""
    details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
    return "; ".join([exc.message, *details]) if details else exc.message
