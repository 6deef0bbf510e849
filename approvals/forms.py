"""Forms of the reviewer pages. The request form is generated from the definition's JSON Schema;
the schema stays the judge (the services validate with it), the Django form only parses and
renders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django import forms

from accounts.forms import UserField
from accounts.models import User
from accounts.people import find_person, person_problem
from approvals.machine.words import enum_options
from approvals.selectors import REQUEST_STATUSES, SORTS, TABS, InboxFilters, column_sort
from approvals.services.signatures import SigningCredentials

# Longer strings than this get a textarea.
TEXTAREA_FROM = 200


def _field(prop: Mapping[str, Any], required: bool) -> forms.Field:
    common: dict[str, Any] = {
        "label": prop.get("title") or None,
        "help_text": prop.get("description", ""),
        "required": required,
    }
    kind = prop.get("type")
    # Fixed values show their titles (x-enumNames, or oneOf of const + title).
    options = enum_options(prop)
    if options is not None:
        choices: list[tuple[Any, str]] = list(options)
        if not required:
            choices.insert(0, ("", "—"))
        return forms.TypedChoiceField(
            choices=choices,
            coerce=lambda value, values=[v for v, _ in options]: next(
                (o for o in values if str(o) == value), value
            ),
            **common,
        )
    item_options = enum_options(prop.get("items") or {}) if kind == "array" else None
    if item_options is not None:
        return forms.MultipleChoiceField(
            choices=item_options, widget=forms.CheckboxSelectMultiple, **common
        )
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "integer":
        return forms.IntegerField(
            min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common
        )
    if kind == "number":
        # FloatField refuses what JSON cannot hold (1e309 would be Infinity).
        return forms.FloatField(
            min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common
        )
    if kind == "string" and prop.get("format") == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    max_length = prop.get("maxLength")
    widget = forms.Textarea(attrs={"rows": 4}) if (max_length or 10**6) > TEXTAREA_FROM else None
    return forms.CharField(
        max_length=max_length,
        min_length=prop.get("minLength"),
        widget=widget,
        strip=True,
        **common,
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class RequestForm(forms.Form):
    """Built per definition by `request_form`; `context()` gives the JSON for the services."""

    schema: Mapping[str, Any] = {}

    def context(self) -> dict[str, Any]:
        assert self.is_valid()
        data = {}
        for name, value in self.cleaned_data.items():
            if value in (None, "", []) and name not in (self.schema.get("required") or []):
                continue
            data[name] = _json_value(value)
        return data

    def add_service_errors(self, field_errors: Mapping[str, list[str]]) -> None:
        for field, messages in field_errors.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message if target else f"{field}: {message}")


def request_form(
    schema: Mapping[str, Any], *, data: Any = None, initial: Mapping[str, Any] | None = None
) -> RequestForm:
    required = set(schema.get("required") or [])
    fields = {
        name: _field(prop, name in required)
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, Mapping) and not prop.get("readOnly")
    }
    form_class = type("RequestForm", (RequestForm,), {**fields, "schema": schema})
    return form_class(data=data, initial=initial)


class ReferenceForm(forms.Form):
    """The request's own reference beside its generated form (prefixed: a form field of the
    definition may be called anything)."""

    business_key = forms.CharField(
        required=False,
        max_length=100,
        label="Reference",
        help_text="Your own reference, such as an order number; one request per reference "
        "in this workflow.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "request")
        super().__init__(*args, **kwargs)


class InboxFilterForm(forms.Form):
    tab = forms.ChoiceField(choices=list(TABS.items()), required=False)
    workflow = forms.CharField(required=False, max_length=100)
    state = forms.CharField(required=False, max_length=200)
    requester = forms.CharField(required=False, max_length=150)
    q = forms.CharField(required=False, max_length=200, label="Search")
    sort = forms.CharField(required=False, max_length=110)
    page = forms.IntegerField(required=False, min_value=1)

    requester_note = ""

    def clean_requester(self) -> str:
        """A person as the picker submits them (a username) or as typed ("Carol", "Bob
        Baker"): their username; text that names nobody, or several, stays as typed (it then
        matches no request) with a note saying why."""
        text = self.cleaned_data["requester"].strip()
        if not text:
            return ""
        person, candidates = find_person(text, User.objects.all())
        if person is None:
            self.requester_note = person_problem(text, candidates)
            return text
        return person.username

    def clean_sort(self) -> str:
        """One of SORTS or a key-column sort ("-col:amount"); anything else sorts by due date.
        Whether the column may sort this inbox, the view decides."""
        sort = self.cleaned_data["sort"]
        return sort if sort in SORTS or column_sort(sort) else "due"

    def filters(self) -> InboxFilters:
        data = self.cleaned_data
        return InboxFilters(
            workflow=data.get("workflow") or "",
            state=data.get("state") or "",
            requester=data.get("requester") or "",
            q=data.get("q") or "",
            sort=data.get("sort") or "due",
        )


class RequestFilterForm(forms.Form):
    """My requests: search, status and page; anything malformed reads as no filter."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(
        choices=[("", "All"), *REQUEST_STATUSES.items()], required=False, label="Status"
    )
    page = forms.IntegerField(required=False, min_value=1)


class DecisionForm(forms.Form):
    decision = forms.CharField(max_length=100)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    # Re-authentication on a step that asks for an electronic signature; never shown again.
    password = forms.CharField(
        required=False,
        strip=False,
        max_length=4096,
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        required=False,
        max_length=12,
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
    )

    def signing(self, provider_at: datetime | None = None) -> SigningCredentials:
        return SigningCredentials(
            password=self.cleaned_data.get("password") or "",
            code=self.cleaned_data.get("code") or "",
            provider_at=provider_at,
        )


class DelegateForm(forms.Form):
    to = UserField(label="Delegate to", max_length=150)
    comment = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )

    # It shares the task page with the decision form: its own ids, so that the label of its
    # note focuses its note, not the decision's comment.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "delegate_%s")
        super().__init__(*args, **kwargs)


class BulkForm(forms.Form):
    tasks = forms.TypedMultipleChoiceField(coerce=int, choices=())
    decision = forms.ChoiceField(choices=[("APPROVE", "Approve")])

    # Any id parses; the services refuse what the user may not decide, item by item.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("tasks") if hasattr(self.data, "getlist") else []
        self.fields["tasks"].choices = [(i, i) for i in ids]

    def clean_tasks(self) -> list[int]:
        tasks = self.cleaned_data["tasks"]
        if len(tasks) > 100:
            raise forms.ValidationError("Choose at most 100 tasks at once.")
        return list(dict.fromkeys(tasks))
