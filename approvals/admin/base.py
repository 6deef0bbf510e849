"""What the admin modules share: read-only lists, the cancel form, a service error as one line,
a JSON form field that refuses nesting the definition readers cannot follow."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest

from approvals.machine.loader import MAX_DEPTH, nesting_problem
from approvals.services.errors import WorkflowError
from approvals.storable import has_surrogates, json_problem


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DefinitionJSONField(forms.JSONField):
    """Django's JSON field, with what a definition's rows cannot hold a form error rather than
    a 500: nesting the parser cannot follow (RecursionError) or deeper than loader.MAX_DEPTH,
    and text the database refuses (NUL, lone surrogates: approvals.storable)."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError("This JSON is nested too deeply.", code="invalid") from None
        problem = nesting_problem(converted)
        if problem:
            raise ValidationError(f"{problem[0].upper()}{problem[1:]}.", code="invalid")
        unstorable = json_problem(converted, max_depth=MAX_DEPTH)
        if unstorable:
            where, message = unstorable
            raise ValidationError(f"{where}: {message}" if where else message, code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        shown = super().prepare_value(value)
        if isinstance(shown, str) and has_surrogates(shown):
            # Shown again with its error: as the \u escape it was typed as, which a page can hold.
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return shown


# For the admins whose JSON is read as part of a definition (ModelAdmin.formfield_overrides).
DEFINITION_JSON = {models.JSONField: {"form_class": DefinitionJSONField}}


class CancelForm(forms.Form):
    """The reason given when an operator cancels a request (its page, or a failed step's)."""

    reason = forms.CharField(max_length=500)


def error_text(exc: WorkflowError) -> str:
    """A service error as one message: its text, then each field's."""
    details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
    return "; ".join([exc.message, *details]) if details else exc.message
