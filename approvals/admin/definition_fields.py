"""The fields of the definition editor that stand for parts of the machine config: a duration
as an amount and a unit, a guard with its live check."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from approvals.admin.base import DefinitionJSONField
from approvals.machine.durations import (
    DURATION_UNITS,
    DurationError,
    duration_from_parts,
    duration_parts,
    parse_duration,
)

# Written as typed, for what no single unit holds (P1DT12H, milliseconds).
AS_WRITTEN = "iso"


def unit_choices(*, business: bool) -> list[tuple[str, str]]:
    """The unit picker's options; under a business calendar days are working days."""
    labels = (
        {"minutes": "working minutes", "hours": "working hours", "days": "business days"}
        if business
        else {"minutes": "minutes", "hours": "hours", "days": "days"}
    )
    return [*((unit, labels[unit]) for unit in DURATION_UNITS), (AS_WRITTEN, "ISO 8601")]


class DurationWidget(forms.MultiWidget):
    """An amount box and a unit picker: "2" "business days"."""

    def __init__(self, *, business: bool = False) -> None:
        amount = forms.TextInput(
            attrs={"size": 6, "inputmode": "decimal", "class": "duration-amount"}
        )
        unit = forms.Select(choices=unit_choices(business=business))
        super().__init__([amount, unit])

    def decompress(self, value: Any) -> list[Any]:
        if value in (None, ""):
            return ["", "days"]
        parts = duration_parts(str(value))
        if parts is None:
            return [str(value), AS_WRITTEN]
        return [str(parts[0]), parts[1]]


class DurationField(forms.MultiValueField):
    """An ISO 8601 duration the engine reads (PT4H, P2D), from an amount and a unit; empty
    when no amount is given."""

    def __init__(self, *, business: bool = False, **kwargs: Any) -> None:
        fields = (
            forms.CharField(required=False),
            forms.ChoiceField(choices=unit_choices(business=business), required=False),
        )
        kwargs.setdefault("required", False)
        widget = DurationWidget(business=business)
        # The field's label names no single box (MultiWidget has no id_for_label): each says
        # what it is.
        label = kwargs.get("label") or "Duration"
        widget.widgets[0].attrs["aria-label"] = f"{label}: amount"
        widget.widgets[1].attrs["aria-label"] = f"{label}: unit"
        super().__init__(fields, widget=widget, require_all_fields=False, **kwargs)

    def compress(self, data_list: list[Any]) -> str | None:
        amount, unit = [*(data_list or []), "", ""][:2]
        amount = str(amount or "").strip()
        if not amount:
            return None
        try:
            if unit == AS_WRITTEN:
                parse_duration(amount)
                return amount
            if not amount.isdigit():
                raise DurationError(f"expected a whole number of {unit or 'days'}, got {amount!r}")
            return duration_from_parts(int(amount), unit or "days")
        except DurationError as exc:
            raise ValidationError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None


class OptionalJSONField(DefinitionJSONField):
    """A JSON box that is empty, not ``null``, when the row has nothing there."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


class GuardInput(forms.TextInput):
    """A guard's text box, with the place where static/js/definition_editor.js says, as the
    admin types, whether the engine can read it."""

    def __init__(self, *, check_url: str | None) -> None:
        attrs = {"size": 24, "class": "guard-input", "spellcheck": "false"}
        if check_url:
            attrs["data-check-url"] = check_url
        super().__init__(attrs=attrs)

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> str:
        box = super().render(name, value, attrs, renderer)
        if "data-check-url" not in self.attrs:
            return box
        return format_html(
            '{}<output class="guard-check" for="{}" aria-live="polite"></output>',
            box,
            (attrs or {}).get("id", ""),
        )
