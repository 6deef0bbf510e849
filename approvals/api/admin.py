"""Admin for API tokens: staff make them for integration accounts, the plaintext shown once;
they are revoked, never edited (imported by approvals.admin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.people import choosable_people
from approvals.models import ApiToken
from approvals.services.api_tokens import token_check, token_create, token_revoke
from approvals.services.errors import InvalidInput


class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["user", "name", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = choosable_people()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            data["name"] = token_check(
                user=data["user"],
                name=data["name"],
                expires_at=data.get("expires_at"),
                now=timezone.now(),
            )
        except InvalidInput as exc:
            for field, errors in exc.field_errors.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff make tokens for integration accounts here; the plaintext is shown once."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "live")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "user__username", "prefix")
    list_select_related = ("user",)
    actions = ["revoke"]
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    @admin.display(boolean=True, description="live")
    def live(self, token: ApiToken) -> bool:
        return token.revoked_at is None

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewable, not editable: a token's identity is its hash; revoke and make a new one.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        # Made by the service (hash only); the plaintext waits on the request for response_add.
        token, plaintext = token_create(
            user=obj.user,
            name=obj.name,
            expires_at=obj.expires_at,
            actor=request.user,
            now=timezone.now(),
        )
        request._signoff_new_token = (token, plaintext)  # type: ignore[attr-defined]
        obj.pk, obj.prefix = token.pk, token.prefix

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url: Any = None) -> Any:
        response = TemplateResponse(
            request,
            "admin/approvals/apitoken/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "token": request._signoff_new_token[0],  # type: ignore[attr-defined]
                "plaintext": request._signoff_new_token[1],  # type: ignore[attr-defined]
                "title": "API token created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        now = timezone.now()
        for token in queryset:
            token_revoke(token_id=token.pk, actor=request.user, now=now)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)
