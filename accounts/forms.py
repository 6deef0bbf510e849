"""Forms of the account pages."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import time_zones
from accounts.people import choosable_people


class UserField(forms.CharField):
    """A person given by username (the delegate box suggests names as you type)."""

    def clean(self, value: Any) -> Any:
        username = super().clean(value)
        if not username:
            return None
        user = choosable_people().filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"No active user '{username}'.")
        return user


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
