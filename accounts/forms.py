"""Forms of the account pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import time_zones
from accounts.people import find_person, person_problem


class PersonInput(forms.TextInput):
    """A text box that suggests people by name as you type (static/js/people.js, which asks
    the people search) and submits the chosen one's username; without JS a typed name works."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            {"autocomplete": "off", "placeholder": "Start typing a name", **(attrs or {})}
        )

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        widget_attrs = context["widget"]["attrs"]
        widget_attrs["list"] = f"{widget_attrs.get('id') or name}-people"
        widget_attrs["data-people-search"] = reverse("user_search")
        return context

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> str:
        box = super().render(name, value, attrs, renderer)
        list_id = f"{(attrs or {}).get('id') or self.attrs.get('id') or name}-people"
        return box + format_html('<datalist id="{}"></datalist>', list_id)


class UserField(forms.CharField):
    """A person: by username (what the suggestions submit), full name, or a first or last name
    only one person has (accounts.people.find_person)."""

    widget = PersonInput

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if not text:
            return None
        person, candidates = find_person(text)
        if person is None:
            raise forms.ValidationError(person_problem(text, candidates))
        return person


class AbsenceForm(forms.Form):
    substitute = UserField(label="Who covers for you", max_length=150)
    starts_on = forms.DateField(
        label="First day away", widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(label="Last day away", widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(required=False, max_length=200)


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    def __init__(self, *args: Any, site_zone: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", f"The site's ({site_zone})"), *((z, z) for z in time_zones())]
