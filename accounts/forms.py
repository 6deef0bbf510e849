"""Forms of the account pages."""

from __future__ import annotations

from django import forms

from approvals.forms import UserField


class AbsenceForm(forms.Form):
    substitute = UserField(label="Who covers for you", max_length=150)
    starts_on = forms.DateField(
        label="First day away", widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(label="Last day away", widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(required=False, max_length=200)
