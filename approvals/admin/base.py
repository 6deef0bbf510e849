"""What the admin modules share: read-only lists, the cancel form, a service error as one line,
a JSON form field that refuses nesting the definition readers cannot follow."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest

from approvals.machine.loader import nesting_problem
from approvals.services.errors import WorkflowError


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DefinitionJSONField(forms.JSONField):
    """Django's JSON field, with JSON nested deeper than a definition may be a form error: the
    parser's RecursionError (a 500) for what it cannot follow, loader.MAX_DEPTH otherwise."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="invalid") from None
        problem = nesting_problem(converted)
        if problem:
            raise ValidationError(f"{problem[0].upper()}{problem[1:]}.", code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)


# For the admins whose JSON is read as part of a definition (ModelAdmin.formfield_overrides).
DEFINITION_JSON = {models.JSONField: {"form_class": DefinitionJSONField}}


class CancelForm(forms.Form):
    """The reason given when an operator cancels a request (its page, or a failed step's)."""

    reason = forms.CharField(max_length=500)


def error_text(exc: WorkflowError) -> str:
    """A service error as one message: its text, then each field's."""
    details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
    return "; ".join([exc.message, *details]) if details else exc.message
